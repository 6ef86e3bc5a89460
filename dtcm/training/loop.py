"""The training loop: diffusers' skeleton (``main(args)``, ``accelerator.accumulate``, clipping only on
``sync_gradients``, saving on the main process) with exact resumption, a non-finite-loss guard and a
callback for the web app. What the loop carries between steps is one ``LoopState``; what it is built from,
one ``Run``.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from dtcm.device import resolve_device
from dtcm.evaluate import evaluate_loader
from dtcm.training.args import resolve_args
from dtcm.training.build import make_loader, setup_run
from dtcm.training.checkpoint import replace_dir, save_checkpoint
from dtcm.training.distributed import (
    all_reduce,
    all_reduce_grads,
    any_process,
    broadcast_buffers,
    gather_objects,
    weights_hash,
)
from dtcm.training.log import finite_or_none
from dtcm.training.sampler import EpochSampler, seed_of
from dtcm.training.state import LoopState, Run, Window, new_epoch_stats
from dtcm.training.step import TERMS, compute_losses

__all__ = ["TrainingDiverged", "main"]


class TrainingDiverged(RuntimeError):
    """Too many optimizer steps in a row had a non-finite loss or gradient; no weights were written."""

    def __init__(self, message: str, last_checkpoint: str | None):
        super().__init__(message)
        self.last_checkpoint = last_checkpoint


def main(
    args, callback: Callable[[dict], bool | None] | None = None, stop_event: threading.Event | None = None
) -> dict:
    """Train a DTCM model; callable in-process (returns, never exits).

    Args:
        args: a Namespace from ``parse_args``/``add_cli_arguments`` or a dict of DEFAULTS keys.
        callback: called on the main process with every step's metrics (``type`` "step": step, epoch,
            every loss term, acc, lr, grad_norm, ...) and at epoch ends (``type`` "epoch"); returning True
            stops training after the current step, with a checkpoint and ``final/`` written.
        stop_event: setting it has the same effect as the callback returning True.
    Returns:
        ``{"status": "finished" | "stopped", "output_dir", "final", "checkpoint", "steps", "epoch",
        "metrics" (last step record), "epoch_metrics" (last epoch record), "nonfinite_steps",
        "skipped_files", "dropped_clips", "weights_sha256"}``.
    Raises:
        TrainingDiverged: after ``max_nonfinite`` non-finite steps in a row (checkpoints left untouched).
        ValueError: no clip could be used (every file missing or undecodable), or ``--resume`` from a
            checkpoint older than others of the run without ``--overwrite-newer``.
        DamagedFile: every checkpoint of the run is damaged, or the one ``--resume`` names is.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    args = resolve_args(args)
    cpu = resolve_device().type == "cpu"  # DTCM_DEVICE=cpu trains on the CPU even where there is a GPU
    mixed = args.mixed_precision
    if mixed == "auto":
        mixed = "no" if cpu else "bf16"
    # without a GPU, cpu=True is what makes Accelerate see a torchrun launch as MULTI_CPU (gloo)
    accelerator = Accelerator(gradient_accumulation_steps=args.grad_accum, mixed_precision=mixed, cpu=cpu)
    try:
        return _train(args, accelerator, callback, stop_event)
    finally:
        if accelerator.num_processes > 1:
            accelerator.end_training()
        else:  # let the next in-process run build its own Accelerator
            AcceleratorState._reset_state(reset_partial_state=True)
            GradientState._reset_state()


def _train(args, accelerator, callback, stop_event) -> dict:
    run, state = setup_run(args, accelerator, callback, stop_event)
    first_epoch, skip_batches = state.epoch, state.batch_in_epoch
    stop = state.global_step >= run.total_steps
    for epoch in range(first_epoch, run.num_epochs if not stop else first_epoch):
        stop = _train_epoch(run, state, epoch, skip_batches if epoch == first_epoch else 0)
        if state.status == "stopped":
            break
        if _end_epoch(run, state) or stop:
            break
    run.bar.close()
    if state.clips_total == 0:
        first = f" (first: {state.first_skipped})" if state.first_skipped else ""
        dropped = (
            f" and {state.dropped_total} dropped from batches that shrank to one clip" if state.dropped_total else ""
        )
        raise ValueError(
            f"no usable clip in {run.args.data}: {state.skipped_total} clips read were skipped as missing or "
            f"undecodable{first}{dropped}; nothing was trained, so no model was saved"
        )
    if state.last_ckpt is None or Path(state.last_ckpt).name != f"checkpoint-{state.global_step}":
        state.last_ckpt = _checkpoint(run, state)
    return _finish(run, state)


def _train_epoch(run: Run, state: LoopState, epoch: int, skip: int) -> bool:
    """The optimizer steps of one epoch, after ``skip`` micro-batches already done; True: stop the run."""
    args = run.args
    if skip == 0:
        state.epoch_stats = new_epoch_stats()
    state.epoch, state.batch_in_epoch = epoch, skip
    run.train_set.set_epoch(epoch)
    limit = run.batches_per_epoch * args.batch_size
    rank = run.accelerator.process_index
    sampler = EpochSampler(
        len(run.train_set), args.seed, epoch, True, rank, run.world, skip=skip * args.batch_size, limit=limit
    )
    loader = make_loader(run.train_set, args.batch_size, args.num_workers, sampler, seed_of(args.seed, epoch, 29))
    window, t_step = Window(), time.perf_counter()
    for batch_idx, batch in enumerate(loader, start=skip):
        state.batch_in_epoch = batch_idx + 1
        stepped = _micro_batch(run, state, window, batch, batch_idx)
        if stepped is None:  # inside a window of grad_accum micro-batches
            continue
        record = _record_step(run, state, window, *stepped, t_step)
        want_stop = _ask_stop(run, record)
        if args.debug_step_delay:
            time.sleep(args.debug_step_delay)
        if state.consecutive_nonfinite >= args.max_nonfinite:
            _diverge(run, state)
        if want_stop:
            state.status = "stopped"
        periodic = args.checkpoint_every and state.global_step % args.checkpoint_every == 0
        if (periodic or want_stop) and state.clips_total != 0:  # nothing is kept of a run that has seen no clip
            state.last_ckpt = _checkpoint(run, state)
        window, t_step = Window(), time.perf_counter()
        if want_stop or state.global_step >= run.total_steps:
            return True
    return False


def _micro_batch(run: Run, state: LoopState, window: Window, batch: dict, batch_idx: int):
    """Accumulate one micro-batch; at a window's end take the optimizer step: ``(ok, grad_norm, lr)``, else None."""
    args, accelerator = run.args, run.accelerator
    window_end = (batch_idx + 1) % args.grad_accum == 0 or batch_idx + 1 == run.batches_per_epoch
    # accumulate() adds one and syncs when the count hits grad_accum: place it so that it syncs exactly
    # at the end of each window of grad_accum micro-batches, and at the end of every epoch
    accelerator.step = args.grad_accum - 1 if window_end else batch_idx % args.grad_accum
    n_local, skipped_local = len(batch["label"]), len(batch["skipped"])
    state.first_skipped = state.first_skipped or next(iter(batch["skipped"]), None)
    # BatchNorm cannot train on one clip: a batch that bad files shrank to one is dropped, and counted
    dropped_local = n_local if n_local < min(2, args.batch_size) else 0
    empty = all_reduce(accelerator, [float(n_local == dropped_local), float(skipped_local), float(dropped_local)])
    window.skipped += int(empty[1])
    window.dropped += int(empty[2])
    backward_here, stepped = False, None
    with accelerator.accumulate(run.ddp):
        if empty[0] == 0 and not window.bad:
            backward_here = _forward_backward(run, state, window, batch, n_local)
        if accelerator.sync_gradients:
            stepped = _optimizer_step(run, window, backward_here)
    return stepped


def _forward_backward(run: Run, state: LoopState, window: Window, batch: dict, n_local: int) -> bool:
    """Forward, every loss term and backward of one micro-batch; False when a process's loss was not finite."""
    args = run.args
    if window.buffers is None:  # BatchNorm statistics as they were before this step
        window.buffers = [b.detach().clone() for b in run.model.buffers()]
    x = batch["video"].to(run.accelerator.device, non_blocking=True)
    labels = batch["label"].to(run.accelerator.device)
    logits, y, curves = run.ddp(x)
    logits = logits if logits is None else logits.float()
    terms = compute_losses(args.setting, logits, labels, x, y, curves, args.alpha, args.w_stc)
    loss = terms["loss"]
    if state.global_step + 1 in args.debug_nan_steps:
        loss = loss * float("nan")
        terms["loss"] = loss
    correct = float((logits.argmax(1) == labels).sum()) if logits is not None else 0.0
    vec = [float(not torch.isfinite(loss)), float(n_local), correct]
    vec += [float(terms[t].detach()) * n_local for t in TERMS]
    red = all_reduce(run.accelerator, vec)
    backward = red[0] == 0
    if backward:
        run.accelerator.backward(loss)
        window.backward = True
    else:  # a non-finite loss on any process: drop this window's gradients everywhere
        window.bad = True
        for p in run.trainable:
            p.grad = None
    window.n += red[1]
    window.correct += red[2]
    for t, v in zip(TERMS, red[3:], strict=True):
        window.terms[t] += v
    return backward


def _optimizer_step(run: Run, window: Window, backward_here: bool) -> tuple[bool, float | None, float]:
    """Clip and step unless the window went bad; a skipped step restores BatchNorm. ``(ok, grad_norm, lr)``."""
    accelerator, trainable = run.accelerator, run.trainable
    ok, grad_norm = not window.bad, None
    if ok and window.backward:
        if run.world > 1 and not backward_here:  # the window's last micro-batch was empty
            all_reduce_grads(trainable, run.world)
        max_norm = run.args.max_grad_norm if run.args.max_grad_norm > 0 else float("inf")
        grad_norm = float(accelerator.clip_grad_norm_(trainable, max_norm))
        # with fp16, GradScaler itself skips an overflowing step and lowers its scale
        if math.isfinite(grad_norm) or accelerator.scaler is not None:
            run.optimizer.step()
        else:
            ok = False
    if not ok and window.buffers is not None:  # a skipped step leaves the model as it was
        with torch.no_grad():
            for b, saved in zip(run.model.buffers(), window.buffers, strict=True):
                b.copy_(saved)
    lr = run.scheduler.get_last_lr()[0]  # the rate this step used
    with warnings.catch_warnings():  # after a skipped step torch thinks the order is wrong
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
        run.scheduler.step()
    for p in trainable:
        p.grad = None
    return ok, grad_norm, lr


def _record_step(run: Run, state: LoopState, window: Window, ok: bool, grad_norm, lr: float, t_step: float) -> dict:
    """Count one optimizer step, log its record and show it on the bar."""
    state.global_step += 1
    state.consecutive_nonfinite = 0 if ok else state.consecutive_nonfinite + 1
    state.nonfinite_total += int(not ok)
    state.skipped_total += window.skipped
    state.dropped_total += window.dropped
    n = window.n
    if ok and state.clips_total is not None:
        state.clips_total += int(n)
    record = {
        "type": "step",
        "step": state.global_step,
        "epoch": state.epoch,
        "batch": state.batch_in_epoch,
        "batches_per_epoch": run.batches_per_epoch,
        "total_steps": run.total_steps,
    }
    record.update({t: finite_or_none(v / n) if n else None for t, v in window.terms.items()})
    record.update(
        acc=window.correct / n if n and run.class_names is not None else None,
        lr=lr,
        grad_norm=grad_norm,
        nonfinite=not ok,
        clips=int(n),
        skipped_files=window.skipped,
        dropped_clips=window.dropped,
        clips_per_s=n / max(time.perf_counter() - t_step, 1e-9),
        time=time.time(),
    )
    stats = state.epoch_stats
    if ok:
        stats["n"] += n
        stats["correct"] += window.correct
        stats["loss"] += window.terms["loss"]
    stats["skipped"] += window.skipped
    stats["nonfinite"] += int(not ok)
    state.last_step_record = record
    if state.global_step % run.args.log_every == 0 or not ok:
        run.log.write(record)
    run.bar.set_postfix(loss=record["loss"], acc=record["acc"], refresh=False)
    run.bar.update(1)
    return record


def _ask_stop(run: Run, record: dict) -> bool:
    """Whether the callback (main process) or the stop event asks to stop, on any process."""
    want_stop = False
    if run.accelerator.is_main_process:
        want_stop = bool(run.callback(record)) if run.callback is not None else False
    want_stop = want_stop or (run.stop_event is not None and run.stop_event.is_set())
    return any_process(run.accelerator, want_stop)


def _diverge(run: Run, state: LoopState):
    """Stop a run whose last ``max_nonfinite`` steps were all non-finite: log it and raise TrainingDiverged."""
    message = (
        f"training stopped at step {state.global_step}: {state.consecutive_nonfinite} optimizer steps in a row "
        f"had a non-finite loss or gradient (the weights were not updated by them); last good "
        f"checkpoint: {state.last_ckpt or 'none'}. Lower --lr, raise --max-grad-norm clipping or check the data."
    )
    run.log.write(
        {
            "type": "diverged",
            "step": state.global_step,
            "epoch": state.epoch,
            "message": message,
            "last_checkpoint": state.last_ckpt,
            "time": time.time(),
        }
    )
    run.bar.close()
    raise TrainingDiverged(message, state.last_ckpt)


def _end_epoch(run: Run, state: LoopState) -> bool:
    """Validate, log the epoch record and ask the callback; True: stop the run."""
    args, accelerator, stats = run.args, run.accelerator, state.epoch_stats
    n = stats["n"]
    record = {
        "type": "epoch",
        "epoch": state.epoch,
        "step": state.global_step,
        "partial": state.batch_in_epoch < run.batches_per_epoch,
        "train_acc": stats["correct"] / n if n and args.setting != "enhancer-only" else None,
        "train_loss": stats["loss"] / n if n else None,
        "skipped_files": stats["skipped"],
        "nonfinite_steps": stats["nonfinite"],
        "val_top1": None,
        "val_top5": None,
        "val_n": 0,
    }
    if run.val_set is not None and args.setting != "enhancer-only":
        broadcast_buffers(accelerator, run.model)
        rank, world = accelerator.process_index, run.world
        sampler = EpochSampler(len(run.val_set), shuffle=False, rank=rank, world_size=world, pad=False)
        loader = make_loader(
            run.val_set, args.batch_size, args.num_workers, sampler, seed_of(args.seed, state.epoch, 31)
        )
        res = evaluate_loader(run.model, loader, k=args.k, device=accelerator.device)
        c1, c5, vn, vskip = all_reduce(accelerator, [res["correct1"], res["correct5"], res["n"], res["skipped"]])
        record.update(
            val_top1=c1 / vn if vn else None,
            val_top5=c5 / vn if vn else None,
            val_n=int(vn),
            val_skipped_files=int(vskip),
        )
    record["time"] = time.time()
    state.last_epoch_record = record
    run.ddp.train()  # evaluation left every part of the model in train mode; re-freeze what the setting freezes
    run.log.write(record)
    want_stop = _ask_stop(run, record)
    if want_stop:
        state.status = "stopped"
    return want_stop


def _checkpoint(run: Run, state: LoopState) -> str:
    """Write ``checkpoint-STEP`` of the current step; returns its path."""
    saved = state.to_checkpoint(run.args, run.world)
    args = (run.accelerator, run.output_dir, state.global_step, run.ddp, run.optimizer, run.scheduler, saved)
    return str(save_checkpoint(*args, run.args.checkpoints_total_limit))


def _finish(run: Run, state: LoopState) -> dict:
    """Give every process the main one's BatchNorm statistics, check they agree, write ``final/``; the summary."""
    accelerator, model, output_dir = run.accelerator, run.model, run.output_dir
    final = output_dir / "final"
    broadcast_buffers(accelerator, model)
    digest = weights_hash(model)
    hashes = gather_objects(accelerator, digest)
    if accelerator.is_main_process:
        tmp = output_dir / ".tmp-final"
        shutil.rmtree(tmp, ignore_errors=True)
        summary_extra = {**model.config.extra, "steps": state.global_step, "epoch": state.epoch}
        epoch_record = state.last_epoch_record
        if epoch_record.get("val_top1") is not None:
            summary_extra.update(val_top1=epoch_record["val_top1"], val_top5=epoch_record["val_top5"])
        model.save_pretrained(tmp, config=model.config.replace(extra=summary_extra))
        replace_dir(tmp, final)
    accelerator.wait_for_everyone()
    if len(set(hashes)) > 1:
        raise RuntimeError(f"the {run.world} processes ended with different weights: {hashes}")
    summary = {
        "status": state.status,
        "output_dir": str(output_dir),
        "final": str(final),
        "checkpoint": state.last_ckpt,
        "steps": state.global_step,
        "epoch": state.epoch,
        "metrics": state.last_step_record,
        "epoch_metrics": state.last_epoch_record,
        "nonfinite_steps": state.nonfinite_total,
        "skipped_files": state.skipped_total,
        "dropped_clips": state.dropped_total,
        "weights_sha256": digest,
    }
    run.log.write({"type": "end", **summary, "rank_weights_sha256": hashes, "time": time.time()})
    return summary

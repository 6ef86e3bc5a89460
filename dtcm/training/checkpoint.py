"""Checkpoints: atomic ``checkpoint-STEP`` folders (model, optimizer, scheduler, every process's RNGs), checked
by their checksums before a resume reads them, and the rules for which one ``--resume`` takes."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
from pathlib import Path

import numpy as np
import torch

from dtcm.checksums import DamagedFile, load_safetensors, read_json, verify_checksums, write_checksums
from dtcm.training.log import logger

__all__ = [
    "KILL_IN_CHECKPOINT_ENV",
    "check_checkpoint",
    "find_resume",
    "latest_checkpoint",
    "load_checkpoint",
    "check_resumable",
    "newer_than",
    "plan_resume",
    "replace_dir",
    "restore_rng",
    "save_checkpoint",
    "tidy_run_folder",
]

KILL_IN_CHECKPOINT_ENV = "DTCM_DEBUG_KILL_IN_CHECKPOINT"  # test hook: SIGKILL while writing checkpoint-STEP


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The complete ``checkpoint-STEP`` folder with the highest STEP in ``output_dir``, or None."""
    found = _checkpoints(output_dir)
    return found[-1][1] if found else None


def _checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(STEP, folder)`` of the complete checkpoints in ``output_dir``, oldest first."""
    found = []
    for d in Path(output_dir).glob("checkpoint-*"):
        step = d.name.removeprefix("checkpoint-")
        if step.isdigit() and (d / "state.json").is_file():
            found.append((int(step), d))
    return sorted(found)


def find_resume(resume: str, output_dir: str, warn: bool = True) -> Path | None:
    """The checkpoint ``--resume`` names: a checkpoint folder (checked), or a run folder's newest good one."""
    path = Path(output_dir if resume == "latest" else resume)
    if resume != "latest" and (path / "state.json").is_file():
        check_checkpoint(path)
        return path
    if resume != "latest" and not (path.is_dir() and _checkpoints(path)):
        raise FileNotFoundError(f"--resume {resume}: not a checkpoint folder (no state.json) nor a run folder with one")
    damaged = []
    for _, ckpt in reversed(_checkpoints(path)):
        try:
            check_checkpoint(ckpt)
        except DamagedFile as exc:
            damaged.append(str(exc))
            continue
        if damaged and warn:
            logger.warning("%s; resuming from %s, the newest good checkpoint", "; ".join(damaged), ckpt.name)
        return ckpt
    if damaged:
        raise DamagedFile(f"every checkpoint in {path} is damaged ({'; '.join(damaged)}); start a new run")
    return None


def check_checkpoint(path: Path) -> None:
    """Raise DamagedFile, naming the file, unless the checkpoint's files match their checksums and parse."""
    verify_checksums(path)  # checkpoints written before checksums have none
    read_json(path / "state.json")


def newer_than(output_dir: Path, resume_from: Path) -> tuple[list[Path], list[Path]]:
    """(good, damaged) checkpoints of ``output_dir`` after ``resume_from``; a ``final/`` of a later step is good."""
    step = read_json(resume_from / "state.json")["global_step"]
    good, damaged = [], []
    for s, ckpt in _checkpoints(output_dir):
        if s > step:
            try:
                check_checkpoint(ckpt)
                good.append(ckpt)
            except DamagedFile:
                damaged.append(ckpt)
    final = output_dir / "final"
    if final.is_dir():
        try:
            final_step = read_json(final / "config.json").get("extra", {}).get("steps")
        except (DamagedFile, OSError, AttributeError):
            final_step = None
        if not isinstance(final_step, int) or final_step > step:
            good.append(final)
    return good, damaged


def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(keys.astype(np.int64))
    meta = {"numpy": [name, int(pos), int(has_gauss), float(gauss)], "python": random.getstate()}
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors)) if f"cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    name, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = meta["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _save_tensors_json(tensors: dict, meta, folder: Path, stem: str) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(folder / f"{stem}.safetensors"))
    (folder / f"{stem}.json").write_text(json.dumps(meta, indent=1))


def _load_tensors_json(folder: Path, stem: str) -> tuple[dict, object]:
    return load_safetensors(folder / f"{stem}.safetensors"), read_json(folder / f"{stem}.json")


def _optimizer_files(state: dict) -> tuple[dict, dict]:
    tensors, other = {}, {}
    for pid, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{name}"] = value
            else:
                other.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "state": other}


def _optimizer_state(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for pid, entry in meta["state"].items():
        state.setdefault(int(pid), {}).update(entry)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished folder into place in one rename (an older folder of that name is removed)."""
    if final.exists():
        trash = final.with_name(f".trash-{final.name}-{os.getpid()}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)
    try:  # make the rename itself durable
        fd = os.open(final.parent, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        pass


def save_checkpoint(accelerator, output_dir: Path, step: int, model, optimizer, scheduler, state: dict, limit: int):
    """Write ``checkpoint-STEP`` atomically: everything goes to a temporary folder beside it, then one rename.

    Every process writes its RNG state; the main process writes model, optimizer and scheduler, then
    ``state.json`` and ``checksums.sha256`` last, renames, and prunes to the newest ``limit`` checkpoints.
    """
    final = output_dir / f"checkpoint-{step}"
    tmp = output_dir / f".tmp-checkpoint-{step}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    _save_tensors_json(*_rng_state(), tmp, f"rng-{accelerator.process_index}")
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).model.save_pretrained(tmp / "model")
        if os.environ.get(KILL_IN_CHECKPOINT_ENV) == str(step):  # test hook: die between two files
            os.kill(os.getpid(), signal.SIGKILL)
        _save_tensors_json(*_optimizer_files(optimizer.state_dict()), tmp, "optimizer")
        (tmp / "scheduler.json").write_text(json.dumps(scheduler.state_dict(), indent=1))
        if accelerator.scaler is not None:  # fp16 loss scale
            (tmp / "scaler.json").write_text(json.dumps(accelerator.scaler.state_dict(), indent=1))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        write_checksums(tmp)  # every file of every process, checked before a resume reads them
        replace_dir(tmp, final)
        done = sorted(
            (int(d.name.split("-")[1]), d) for d in output_dir.glob("checkpoint-*") if d.name.split("-")[1].isdigit()
        )
        for _, old in done[: max(0, len(done) - max(limit, 1))]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(path: str | os.PathLike, model, optimizer=None, scheduler=None, rank: int | None = 0) -> dict:
    """Load a checkpoint folder into a DTCM model (and optimizer, scheduler, this process's RNGs).

    Returns:
        The checkpoint's state (``global_step``, ``epoch``, ``batch_in_epoch``, ``args``, ...).

    Raises:
        DamagedFile: a file of the checkpoint is truncated, altered (checksum) or not valid JSON; it is named.
    """
    from dtcm.model import load_state_dict_strict

    path = Path(path)
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no state.json)")
    check_checkpoint(path)
    state = read_json(path / "state.json")
    load_state_dict_strict(model, load_safetensors(path / "model" / "model.safetensors"), source=str(path))
    if optimizer is not None:
        optimizer.load_state_dict(_optimizer_state(*_load_tensors_json(path, "optimizer")))
    if scheduler is not None:
        scheduler.load_state_dict(read_json(path / "scheduler.json"))
    if rank is not None:
        restore_rng(path, rank)
    return state


def restore_rng(path: Path, rank: int) -> None:
    """Put back process ``rank``'s torch, CUDA, NumPy and Python RNG states from a checkpoint (or warn)."""
    if (path / f"rng-{rank}.safetensors").is_file():
        _set_rng_state(*_load_tensors_json(path, f"rng-{rank}"))
    else:
        logger.warning("%s has no RNG state for process %d; resumption will not be exact", path, rank)


def plan_resume(args, output_dir: Path) -> tuple[Path | None, list[Path], list[Path]]:
    """(checkpoint to resume from or None, newer checkpoints to delete, damaged ones to move aside) of a run.

    Refuses to start over a run's checkpoints without ``--resume``, and to resume from an older checkpoint
    without ``--overwrite-newer``.
    """
    resume_from = find_resume(args.resume, str(output_dir)) if args.resume else None
    if args.resume and resume_from is None:
        logger.warning("no checkpoint in %s; starting a new run", output_dir)
    newer, damaged = newer_than(output_dir, resume_from) if resume_from is not None else ([], [])
    if newer and not args.overwrite_newer:
        names = [d.name for d in newer]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        raise ValueError(
            f"{output_dir} holds {listed}, newer than {resume_from.name}; resuming from it would replace them: "
            "pass --overwrite-newer to do so, or resume from the newest checkpoint (--resume)"
        )
    if resume_from is None and latest_checkpoint(output_dir) is not None:
        raise ValueError(
            f"{output_dir} holds checkpoints of an earlier run; pass --resume to continue it, "
            "or choose another --output-dir"
        )
    return resume_from, newer, damaged


def check_resumable(resume_from: Path, args, world: int) -> None:
    """Exact resumption needs the checkpoint's batch size, accumulation and process count."""
    saved = read_json(resume_from / "state.json")
    for key in ("batch_size", "grad_accum"):
        if saved["args"].get(key) != getattr(args, key):
            raise ValueError(
                f"{resume_from} was trained with {key}={saved['args'].get(key)}, not "
                f"{getattr(args, key)}; resumption needs the same value"
            )
    if saved.get("world_size", 1) != world:
        raise ValueError(f"{resume_from} was written by {saved.get('world_size')} processes, this run has {world}")


def tidy_run_folder(output_dir: Path, fresh: bool, damaged: list[Path], newer: list[Path]) -> None:
    """Main process, before the run writes: a fresh log, damaged checkpoints aside, abandoned ones removed."""
    output_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        (output_dir / "log.jsonl").unlink(missing_ok=True)
    for d in damaged:  # kept for inspection, out of the run's timeline
        logger.warning("moving the damaged %s aside to %s.damaged", d, d.name)
        replace_dir(d, d.with_name(f"{d.name}.damaged"))
    for d in newer:  # a later timeline abandoned, as --overwrite-newer asked
        logger.warning("removing %s: it lies after the checkpoint this run resumes from (--overwrite-newer)", d)
        shutil.rmtree(d, ignore_errors=True)

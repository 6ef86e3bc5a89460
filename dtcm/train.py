"""Joint training of DTCM on Hugging Face Accelerate (SPEC A7, C): one loop for a CPU, a GPU or many.

The loop is the diffusers example skeleton (``parse_args`` + ``main(args)``, ``accelerator.accumulate``,
``accelerator.backward``, clipping only on ``sync_gradients``, saving on the main process) with exact
resumption, atomic checkpoints, a non-finite-loss guard and a callback for the web app.

Usage:
    python -m dtcm.train --data data/synth --model dtcm_mobilenetv2 --output-dir runs/synth
    dtcm train --recipe weights/recipes/dtcm_mobilenetv2_synth.json --output-dir runs/synth
    dtcm train --output-dir runs/synth --resume            # continue exactly where it stopped
    dtcm train --output-dir runs/synth --resume runs/synth/checkpoint-500 --overwrite-newer   # branch off
    torchrun --nproc_per_node 2 -m dtcm.train ...           # several CPU processes (gloo, MULTI_CPU)
    accelerate launch --multi_gpu --num_processes 4 -m dtcm.train ...   # several GPUs (NCCL)

Settings (``--setting``, the paper's Table VI plus the zero-reference enhancer):
    one-stage-total  joint, L_total = L_AR + alpha (W_STC L_STC + L_Dark) (Eq. 7); the default
    one-stage-ar     joint, cross-entropy only
    two-stage        the enhancer frozen (no gradients, eval mode; ``--enhancer-init`` gives its weights),
                     the classifier trained with L_AR on the enhanced clip
    enhancer-only    zero-reference: W_STC L_STC + L_Dark, no labels needed (a flat folder of videos works);
                     the backbone is frozen and unused

``--enhancer-bn frozen`` keeps the enhancer's BatchNorm layers on their running statistics while its weights
train: an enhancer trained on other footage (lightdce-real) then enhances the new clips exactly as it did
before joint training starts, instead of normalising with statistics of a very different batch.

Every hyper-parameter comes from ``DEFAULTS`` < a resumed checkpoint's arguments < ``--recipe FILE.json``
(a JSON object of the same keys as the flags, e.g. ``{"lr": 1e-3, "w_stc": 4}``) < flags given on the
command line. Each step's losses, lr and batch accuracy go to ``OUTPUT/log.jsonl``.

Output folder:
    log.jsonl             one JSON record per line: start / step / epoch / end (and diverged)
    train_args.json       the resolved arguments (a valid recipe)
    checkpoint-STEP/      model/ (save_pretrained), optimizer.safetensors + .json, scheduler.json,
                          rng-RANK.safetensors + .json, state.json and checksums.sha256 (written last);
                          the newest few kept
    final/                the trained model (save_pretrained; config with class names, k, alpha, W_STC)

``--resume`` checks the checkpoint's checksums first: a damaged newest checkpoint is moved aside (to
``checkpoint-STEP.damaged``, with a warning) and the run resumes from the newest good one. Resuming from a
checkpoint older than others of the run (or than ``final/``) is refused, naming them, unless
``--overwrite-newer`` says to delete them. Bad clips are skipped and counted (a batch they shrink to one
clip is dropped, as BatchNorm cannot train on one); a run that trains on no clip at all fails and saves
no model.

Resuming continues exactly (same weights as an uninterrupted run with the same seed and process count):
each epoch's data order and clips are functions of (seed, epoch), batches already done are skipped without
being decoded, and optimizer, scheduler and every process's RNG states are restored. Multi-node runs need
``output_dir`` on a shared file system. One training run per process at a time (Accelerate's state is global).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from dtcm.checksums import DamagedFile, load_safetensors, read_json, verify_checksums, write_checksums
from dtcm.device import resolve_device

__all__ = [
    "DEFAULTS",
    "SETTINGS",
    "TrainingDiverged",
    "EpochSampler",
    "TrainStep",
    "add_cli_arguments",
    "cli_main",
    "compute_losses",
    "evaluate_loader",
    "latest_checkpoint",
    "load_checkpoint",
    "main",
    "parse_args",
    "read_recipe",
    "resolve_args",
    "save_checkpoint",
    "weights_hash",
]

logger = logging.getLogger(__name__)

SETTINGS = ("one-stage-total", "one-stage-ar", "two-stage", "enhancer-only")
ENHANCER_BN = ("batch", "frozen")
SCHEDULERS = ("cosine", "linear", "constant")
TERMS = ("ar", "sc", "tc", "stc", "exp", "col", "tva", "dark", "total", "loss")  # "loss": what is optimised
KILL_IN_CHECKPOINT_ENV = "DTCM_DEBUG_KILL_IN_CHECKPOINT"  # test hook: SIGKILL while writing checkpoint-STEP

DEFAULTS: dict = dict(
    data=None,  # training clips: a split list, a dataset folder (ARID / synthetic) or a folder per class
    val_data=None,  # validation clips in the same forms; 1-clip centre-crop Top-1/Top-5 at each epoch end
    split=1,  # which split's lists to read inside a dataset folder (ARID has 1-3)
    data_root=None,  # every clip of data and val_data must lie inside this folder (uploads); None: anywhere
    model="dtcm_mobilenetv2",  # variant of dtcm.model.list_models() to build when no init is given
    backbone=None,  # override the variant's backbone (dtcm.backbones registry name)
    width_mult=None,  # override the backbone width multiplier (MobileNetV2 / ShuffleNetV2)
    enhancer=None,  # override the enhancer: lightdce, zerodce or none
    init=None,  # model folder or Hub id to start from; its head is re-initialised when class counts differ
    enhancer_init=None,  # model folder or Hub id whose enhancer weights are copied in (two-stage's enhancer)
    setting="one-stage-total",  # one of SETTINGS
    alpha=0.1,  # weight of the enhancement losses in L_total (Eq. 7)
    w_stc=4.0,  # weight of L_STC (Eq. 7)
    k=4,  # frame-sharing factor during training (SPEC A3)
    enhancer_bn="batch",  # the enhancer's BatchNorm while it trains: "batch" statistics, or "frozen" running ones
    lr=1e-5,  # AdamW learning rate (paper: 1e-5 from Kinetics weights; from scratch use ~1e-3)
    weight_decay=0.01,  # AdamW weight decay
    lr_scheduler="cosine",  # cosine, linear (both decay to 0 at the last step) or constant
    lr_warmup_steps=0,  # linear warm-up steps before the schedule
    max_grad_norm=1.0,  # gradient clipping on the global norm; 0 disables
    batch_size=4,  # clips per process per micro-batch (paper: 4)
    grad_accum=1,  # micro-batches per optimizer step
    epochs=50,  # passes over the training set (paper: 50)
    max_steps=None,  # stop after this many optimizer steps (whichever of epochs / max_steps comes first)
    clip_len=None,  # T; default the model config's
    crop=None,  # network input size; default the model config's crop_size
    short_side=None,  # frames resized to this short side before cropping; default the model config's
    seed=0,  # seeds the model init, the data order, the clip sampling and every RNG
    num_workers=2,  # DataLoader worker processes per training process
    cache=False,  # keep decoded videos in memory across epochs (small datasets)
    augment="none",  # training augmentation: none (random start and crop) or strong (dtcm.data.augment)
    output_dir="runs/dtcm",  # where checkpoints, logs and the final model go
    checkpoint_every=500,  # optimizer steps between checkpoints; 0 = only at the end
    checkpoints_total_limit=3,  # newest checkpoints kept
    log_every=1,  # optimizer steps between step records in log.jsonl (the callback sees every step)
    mixed_precision="auto",  # auto (bf16 on CUDA, none on CPU), no, bf16 or fp16
    max_nonfinite=5,  # this many optimizer steps in a row with a non-finite loss or gradient stop training
    progress=True,  # tqdm bar on the main process
    debug_nan_steps=(),  # test hook: optimizer steps (1-based) whose loss is replaced by NaN
    debug_step_delay=0.0,  # test hook: seconds to sleep after each optimizer step
)
_NOT_IN_RECIPES = ("recipe", "resume", "overwrite_newer")


class TrainingDiverged(RuntimeError):
    """Too many optimizer steps in a row had a non-finite loss or gradient; no weights were written."""

    def __init__(self, message: str, last_checkpoint: str | None):
        super().__init__(message)
        self.last_checkpoint = last_checkpoint


# ------------------------------------------------------------------------------------------------ arguments
def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``dtcm train``; every default is None so recipes and checkpoints can fill them (see DEFAULTS)."""
    from dtcm.data.augment import AUGMENTS

    a = parser.add_argument
    g = parser.add_argument_group("data")
    g.add_argument("--data", help="training clips: split list (.txt/.csv), dataset folder or folder per class")
    g.add_argument("--val-data", help="validation clips (same forms); evaluated at every epoch end")
    g.add_argument("--split", type=int, help="split number to read inside a dataset folder (default 1)")
    g.add_argument("--data-root", help="refuse list entries outside this folder (absolute or ../ paths)")
    g.add_argument("--clip-len", type=int, help="frames per clip (default: the model's)")
    g.add_argument("--crop", type=int, help="crop size (default: the model's)")
    g.add_argument("--short-side", type=int, help="resize the short side to this before cropping")
    g.add_argument("--num-workers", type=int, help="DataLoader workers per process (default 2)")
    g.add_argument("--cache", action="store_const", const=True, help="keep decoded videos in memory")
    g.add_argument("--augment", choices=list(AUGMENTS), help="training augmentation (default none)")
    g = parser.add_argument_group("model")
    g.add_argument(
        "--model", help="variant to build when no --init (default dtcm_mobilenetv2; dtcm.model.list_models())"
    )
    g.add_argument("--backbone", help="override the variant's backbone")
    g.add_argument("--width-mult", type=float, help="backbone width multiplier")
    g.add_argument("--enhancer", choices=["lightdce", "zerodce", "none"], help="override the enhancer")
    g.add_argument("--init", help="model folder or Hub id to start from (head re-initialised if classes differ)")
    g.add_argument("--enhancer-init", help="model folder or Hub id to copy the enhancer weights from")
    g = parser.add_argument_group("objective")
    g.add_argument("--setting", choices=SETTINGS, help="what is trained and with which loss (default one-stage-total)")
    g.add_argument("--alpha", type=float, help="weight of the enhancement losses (Eq. 7, default 0.1)")
    g.add_argument("--w-stc", type=float, help="weight of L_STC (Eq. 7, default 4)")
    g.add_argument("--k", type=int, help="frame-sharing factor while training (default 4)")
    g.add_argument(
        "--enhancer-bn",
        choices=ENHANCER_BN,
        help="the enhancer's BatchNorm while it trains: batch statistics (default), or its running statistics "
        "kept frozen (fine-tuning an enhancer whose statistics come from other footage)",
    )
    g = parser.add_argument_group("optimisation")
    g.add_argument("--lr", type=float, help="AdamW learning rate (default 1e-5)")
    g.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 0.01)")
    g.add_argument("--lr-scheduler", choices=SCHEDULERS, help="learning-rate schedule (default cosine)")
    g.add_argument("--lr-warmup-steps", type=int, help="linear warm-up steps (default 0)")
    g.add_argument("--max-grad-norm", type=float, help="clip the gradient norm to this; 0 disables (default 1)")
    g.add_argument("--batch-size", type=int, help="clips per process per micro-batch (default 4)")
    g.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step (default 1)")
    g.add_argument("--epochs", type=int, help="passes over the training set (default 50)")
    g.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    g.add_argument("--seed", type=int, help="seed of everything random (default 0)")
    g.add_argument("--mixed-precision", choices=["auto", "no", "bf16", "fp16"], help="default auto")
    g.add_argument("--max-nonfinite", type=int, help="non-finite steps in a row that stop training (default 5)")
    g = parser.add_argument_group("output")
    g.add_argument("--output-dir", help="run folder (default runs/dtcm)")
    g.add_argument("--checkpoint-every", type=int, help="optimizer steps between checkpoints (default 500)")
    g.add_argument("--checkpoints-total-limit", type=int, help="newest checkpoints kept (default 3)")
    g.add_argument("--log-every", type=int, help="steps between log.jsonl step records (default 1)")
    g.add_argument("--no-progress", dest="progress", action="store_const", const=False, help="no tqdm bar")
    a("--recipe", help="JSON file of hyper-parameters (keys as the flags, underscores); flags override it")
    a("--resume", nargs="?", const="latest", help="continue from the latest checkpoint in --output-dir, or a path")
    a(
        "--overwrite-newer",
        action="store_const",
        const=True,
        help="with --resume from an older checkpoint: delete the run's newer checkpoints and final/ (else refused)",
    )
    a("--debug-nan-steps", type=_int_list, help=argparse.SUPPRESS)
    a("--debug-step-delay", type=float, help=argparse.SUPPRESS)


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.replace(",", " ").split())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``dtcm train`` flags and resolve them against recipe, checkpoint and defaults.

    Example:
        >>> args = parse_args(["--data", "data/synth", "--model", "dtcm_tiny_test", "--max-steps", "10"])
    """
    parser = argparse.ArgumentParser(prog="python -m dtcm.train", description="DTCM joint training")
    add_cli_arguments(parser)
    return resolve_args(parser.parse_args(argv))


def resolve_args(args: argparse.Namespace | dict) -> argparse.Namespace:
    """Fill every unset (None) value: flags > recipe > resumed checkpoint's arguments > DEFAULTS; validate.

    Accepts a Namespace from ``add_cli_arguments`` or a plain dict of the same keys (the web app's form).
    """
    given = dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(args)
    if given.get("_resolved"):
        return argparse.Namespace(**given)
    unknown = sorted(set(given) - set(DEFAULTS) - set(_NOT_IN_RECIPES))
    if unknown:
        raise ValueError(f"unknown training arguments {unknown}; known: {sorted(DEFAULTS)}")
    explicit = {k: v for k, v in given.items() if v is not None}
    layers = [dict(DEFAULTS)]
    resume = explicit.get("resume")
    if resume:
        out = explicit.get("output_dir") or (
            read_recipe(explicit["recipe"]).get("output_dir") if "recipe" in explicit else None
        )
        ckpt = _find_resume(resume, out or DEFAULTS["output_dir"], warn=False)
        if ckpt is not None:
            saved = read_json(ckpt / "state.json").get("args", {})
            inherit = set(DEFAULTS) - {"progress", "debug_nan_steps", "debug_step_delay"}  # not the test hooks
            layers.append({k: v for k, v in saved.items() if k in inherit and v is not None})
    if explicit.get("recipe"):
        layers.append(read_recipe(explicit["recipe"]))
    layers.append(explicit)
    merged: dict = {}
    for layer in layers:
        merged.update(layer)
    merged.setdefault("recipe", None)
    merged.setdefault("resume", None)
    merged.setdefault("overwrite_newer", False)
    merged["debug_nan_steps"] = tuple(merged["debug_nan_steps"] or ())
    _validate(merged)
    merged["_resolved"] = True
    return argparse.Namespace(**merged)


def read_recipe(path: str | os.PathLike) -> dict:
    """A recipe: a JSON object whose keys are training arguments (``-`` or ``_``); unknown keys fail."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such recipe: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object of training arguments, got {type(data).__name__}")
    data = {k.replace("-", "_"): v for k, v in data.items() if not k.startswith("_")}  # "_comment" keys
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; known: {sorted(DEFAULTS)}")
    return data


def _validate(a: dict) -> None:
    def need(ok, what):
        if not ok:
            raise ValueError(what)

    need(a["data"] is not None, "no training data: pass --data (a split list, dataset folder or class folders)")
    need(a["setting"] in SETTINGS, f"setting must be one of {', '.join(SETTINGS)}, got {a['setting']!r}")
    need(a["enhancer_bn"] in ENHANCER_BN, f"enhancer_bn must be batch or frozen, got {a['enhancer_bn']!r}")
    from dtcm.data.augment import AUGMENTS

    need(a["augment"] in AUGMENTS, f"augment must be one of {', '.join(AUGMENTS)}, got {a['augment']!r}")
    need(a["lr_scheduler"] in SCHEDULERS, f"lr_scheduler must be one of {SCHEDULERS}, got {a['lr_scheduler']!r}")
    need(a["mixed_precision"] in ("auto", "no", "bf16", "fp16"), f"bad mixed_precision {a['mixed_precision']!r}")
    for name in ("k", "batch_size", "grad_accum", "epochs", "log_every", "max_nonfinite"):
        need(isinstance(a[name], int) and a[name] >= 1, f"{name} must be an integer >= 1, got {a[name]!r}")
    for name in ("split", "num_workers", "checkpoint_every", "checkpoints_total_limit", "lr_warmup_steps", "seed"):
        need(isinstance(a[name], int) and a[name] >= 0, f"{name} must be an integer >= 0, got {a[name]!r}")
    need(a["max_steps"] is None or (isinstance(a["max_steps"], int) and a["max_steps"] >= 1), "max_steps must be >= 1")
    need(a["lr"] > 0, f"lr must be > 0, got {a['lr']}")
    for name in ("alpha", "w_stc", "weight_decay", "max_grad_norm", "debug_step_delay"):
        need(a[name] >= 0, f"{name} must be >= 0, got {a[name]}")


# ----------------------------------------------------------------------------------------------------- data
def _seed_of(*values: int) -> int:
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1, np.uint64)[0] & ((1 << 63) - 1))


class EpochSampler(torch.utils.data.Sampler):
    """One process's share of an epoch: a permutation seeded by (seed, epoch), dealt round-robin to the
    processes (padded by repetition so every process gets as many items), cut to the first ``limit`` items,
    minus ``skip`` leading items.

    The order depends on nothing but its arguments, which is what makes resumption exact.
    """

    def __init__(self, n, seed=0, epoch=0, shuffle=True, rank=0, world_size=1, pad=True, skip=0, limit=None):
        order = list(range(n))
        if shuffle:
            g = torch.Generator().manual_seed(_seed_of(seed, epoch, 17))
            order = torch.randperm(n, generator=g).tolist()
        if pad and world_size > 1 and n % world_size:
            order += (order * world_size)[: world_size - n % world_size]
        self.indices = order[rank::world_size][:limit][skip:]

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def _loader(dataset, batch_size, num_workers, sampler, seed):
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


def _build_datasets(args, clip_len, crop, short_side):
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


# ---------------------------------------------------------------------------------------------------- model
class TrainStep(nn.Module):
    """What DDP wraps: runs the parts of a DTCM model that a setting trains.

    ``forward(x) -> (logits or None, enhanced (B, 3, T, H, W), curves or None)``. Frozen parts get no
    gradients and stay in eval mode.
    """

    def __init__(self, model, setting: str, k: int, enhancer_bn: str = "batch"):
        super().__init__()
        self.model, self.setting, self.k = model, setting, k
        self.enhancer_bn = enhancer_bn
        self._fast = None  # two-stage: the frozen enhancer's folded copy, made on first use
        if setting == "two-stage" and model.enhancer is not None:
            model.enhancer.requires_grad_(False)
        if setting == "enhancer-only":
            if model.enhancer is None:
                raise ValueError("setting enhancer-only needs an enhancer (lightdce or zerodce), got enhancer none")
            model.backbone.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.setting == "two-stage" and self.model.enhancer is not None:
            self.model.enhancer.eval()
        if self.setting == "enhancer-only":
            self.model.backbone.eval()
        if mode and self.enhancer_bn == "frozen" and self.model.enhancer is not None:
            for m in self.model.enhancer.modules():  # normalise with the running statistics, and keep them
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def _frozen_enhance(self, x):
        """Two-stage: the frozen enhancer through its folded inference copy (same outputs to ~1e-6, about 8x
        faster), built once. Its outputs are inference tensors, used as they are: nothing backpropagates
        into them, and the classifier's first layer saves its own normalised input, not them."""
        if self.model.enhancer is None:
            return x, None
        if self._fast is None:
            from dtcm.inference import optimize_for_inference

            # kept in a tuple so that it is not a submodule: checkpoints hold the model only
            self._fast = (optimize_for_inference(self.model.enhancer.eval()),)
        return self._fast[0](x.float(), self.k)

    def forward(self, x):
        if self.setting == "enhancer-only":
            y, curves = self.model.enhance(x, self.k)
            return None, y, curves
        if self.setting == "two-stage":
            y, curves = self._frozen_enhance(x)
            return self.model.classify(y), y, curves
        out = self.model(x, k=self.k, return_all=True)
        return out.logits, out.enhanced, out.curves


def compute_losses(setting, logits, labels, x, y, curves, alpha, w_stc) -> dict[str, torch.Tensor]:
    """Every loss term of Eq. 1-7 plus ``loss``, the objective of the setting."""
    from dtcm.losses import action_loss, total_loss

    if curves is None:  # no enhancer: only the action term exists
        ar = action_loss(logits, labels)
        terms = {name: ar.new_zeros(()) for name in TERMS}
        terms.update(ar=ar, total=ar)
    else:
        terms = total_loss(logits, labels, x, y.float(), curves.float(), alpha, w_stc)
    if setting in ("two-stage", "one-stage-ar"):
        terms["loss"] = terms["ar"]
    elif setting == "enhancer-only":
        terms["loss"] = w_stc * terms["stc"] + terms["dark"]
    else:
        terms["loss"] = terms["total"]
    return terms


def _base_config(args):
    """The architecture to train: the init model's config, or the named variant's, with overrides."""
    from dtcm.config import DTCMConfig
    from dtcm.model import _VARIANTS, DTCM, list_models  # the variant's config, without building it

    arch = {k: getattr(args, k) for k in ("backbone", "width_mult", "enhancer") if getattr(args, k) is not None}
    if args.init:
        init_model = DTCM.from_pretrained(args.init)
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


def _build_model(args, base_cfg, init_model, class_names, extra):
    from dtcm.model import DTCM, load_state_dict_strict

    changes = dict(k=args.k, alpha=args.alpha, w_stc=args.w_stc, clip_len=args.clip_len, crop_size=args.crop)
    changes.update(short_side=args.short_side, extra=extra)
    if class_names is not None:
        changes.update(num_classes=len(class_names), class_names=tuple(class_names))
    model = DTCM(base_cfg.uncalibrated().replace(**changes))  # an init's calibration fits its weights, not these
    if init_model is not None:
        state, own = init_model.state_dict(), model.state_dict()
        if init_model.config.enhancer != model.config.enhancer:  # backbone-only init
            state = {k: v for k, v in state.items() if k.startswith("backbone.")}
            state.update({k: v for k, v in own.items() if not k.startswith("backbone.")})
        wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
        head = _head_keys(model)
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


def _head_keys(model) -> set[str]:
    linears = [n for n, m in model.backbone.named_modules() if isinstance(m, nn.Linear)]
    return {f"backbone.{linears[-1]}.weight", f"backbone.{linears[-1]}.bias"} if linears else set()


def _lr_lambda(kind: str, warmup: int, total: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress)) if kind == "cosine" else 1.0 - progress

    return f


def weights_hash(model: nn.Module) -> str:
    """SHA-256 of a model's state_dict (names, dtypes, shapes and bytes), to check processes agree."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ evaluation
@torch.no_grad()
def evaluate_loader(model, loader, k: int | None = None, device: str | torch.device | None = None) -> dict:
    """1-clip centre-crop accuracy of ``model`` (a DTCM) over a loader of ``collate_clips`` batches.

    Args:
        model: a DTCM (not DDP-wrapped).
        loader: yields ``{"video": (B, 3, T, H, W), "label": (B,), "skipped": [...]}``; empty batches pass.
        k: frame-sharing factor (default the model's).
        device: where to run (default the model's).
    Returns:
        ``{"top1", "top5"}`` as fractions in [0, 1] (None without clips), ``"n"`` clips, ``"correct1"``,
        ``"correct5"`` counts and ``"skipped"`` files. Top-5 is Top-min(5, classes).
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    c1 = c5 = n = skipped = 0
    for batch in loader:
        skipped += len(batch["skipped"])
        if len(batch["label"]) == 0:
            continue
        logits = model(batch["video"].to(device), k=k).float()
        labels = batch["label"].to(device)
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices  # (B, 5)
        c1 += int((top[:, 0] == labels).sum())
        c5 += int((top == labels[:, None]).any(dim=1).sum())
        n += len(labels)
    model.train(was_training)
    return {
        "top1": c1 / n if n else None,
        "top5": c5 / n if n else None,
        "n": n,
        "correct1": c1,
        "correct5": c5,
        "skipped": skipped,
    }


# ----------------------------------------------------------------------------------------------- checkpoints
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


def _find_resume(resume: str, output_dir: str, warn: bool = True) -> Path | None:
    """The checkpoint ``--resume`` names: a checkpoint folder (checked), or a run folder's newest good one."""
    path = Path(output_dir if resume == "latest" else resume)
    if resume != "latest" and (path / "state.json").is_file():
        _check_checkpoint(path)
        return path
    if resume != "latest" and not (path.is_dir() and _checkpoints(path)):
        raise FileNotFoundError(f"--resume {resume}: not a checkpoint folder (no state.json) nor a run folder with one")
    damaged = []
    for _, ckpt in reversed(_checkpoints(path)):
        try:
            _check_checkpoint(ckpt)
        except DamagedFile as exc:
            damaged.append(str(exc))
            continue
        if damaged and warn:
            logger.warning("%s; resuming from %s, the newest good checkpoint", "; ".join(damaged), ckpt.name)
        return ckpt
    if damaged:
        raise DamagedFile(f"every checkpoint in {path} is damaged ({'; '.join(damaged)}); start a new run")
    return None


def _check_checkpoint(path: Path) -> None:
    """Raise DamagedFile, naming the file, unless the checkpoint's files match their checksums and parse."""
    verify_checksums(path)  # checkpoints written before checksums have none
    read_json(path / "state.json")


def _newer_than(output_dir: Path, resume_from: Path) -> tuple[list[Path], list[Path]]:
    """(good, damaged) checkpoints of ``output_dir`` after ``resume_from``; a ``final/`` of a later step is good."""
    step = read_json(resume_from / "state.json")["global_step"]
    good, damaged = [], []
    for s, ckpt in _checkpoints(output_dir):
        if s > step:
            try:
                _check_checkpoint(ckpt)
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


def _replace_dir(tmp: Path, final: Path) -> None:
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
        _replace_dir(tmp, final)
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
    _check_checkpoint(path)
    state = read_json(path / "state.json")
    load_state_dict_strict(model, load_safetensors(path / "model" / "model.safetensors"), source=str(path))
    if optimizer is not None:
        optimizer.load_state_dict(_optimizer_state(*_load_tensors_json(path, "optimizer")))
    if scheduler is not None:
        scheduler.load_state_dict(read_json(path / "scheduler.json"))
    if rank is not None:
        if (path / f"rng-{rank}.safetensors").is_file():
            _set_rng_state(*_load_tensors_json(path, f"rng-{rank}"))
        else:
            logger.warning("%s has no RNG state for process %d; resumption will not be exact", path, rank)
    return state


# ---------------------------------------------------------------------------------------------------- the loop
class _Log:
    """log.jsonl on the main process: one JSON object per line, flushed as written."""

    def __init__(self, path: Path, enabled: bool, keep_until_step: int | None):
        self.path, self.enabled = path, enabled
        if (
            enabled and keep_until_step is not None and path.is_file()
        ):  # drop what a killed run did after the checkpoint
            kept = []
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by the kill
                step = rec.get("step", 0)
                if (
                    rec.get("type") in ("start", "resume")
                    or (rec.get("type") == "step" and step <= keep_until_step)
                    or (rec.get("type") == "epoch" and step < keep_until_step)
                ):
                    kept.append(line)
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(f"{line}\n" for line in kept))
            os.replace(tmp, path)

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


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

    Example:
        >>> summary = main(parse_args(["--data", "clips/", "--model", "dtcm_tiny_test", "--max-steps", "20"]))
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
    from accelerate.utils import set_seed

    main_proc, world, rank = accelerator.is_main_process, accelerator.num_processes, accelerator.process_index
    output_dir = Path(args.output_dir)
    resume_from = _find_resume(args.resume, str(output_dir)) if args.resume else None
    if args.resume and resume_from is None:
        logger.warning("no checkpoint in %s; starting a new run", output_dir)
    newer, damaged = _newer_than(output_dir, resume_from) if resume_from is not None else ([], [])
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
    if args.cache and args.num_workers > 0:
        logger.warning("--cache with --num-workers > 0 keeps clips only within an epoch (workers restart)")

    # ------------------------------------------------------------------ data and model (same seed everywhere)
    set_seed(args.seed)
    with accelerator.main_process_first():  # one download of --init from the Hub
        base_cfg, init_model = _base_config(args)
    clip_len = args.clip_len or base_cfg.clip_len
    crop, short_side = args.crop or base_cfg.crop_size, args.short_side or base_cfg.short_side
    args = argparse.Namespace(**{**vars(args), "clip_len": clip_len, "crop": crop, "short_side": short_side})
    train_set, val_set = _build_datasets(args, clip_len, crop, short_side)
    class_names = None if args.setting == "enhancer-only" else train_set.class_names
    extra = {"trained_with": "dtcm.train", "setting": args.setting, "seed": args.seed, "data": Path(args.data).name}
    with accelerator.main_process_first():
        model = _build_model(args, base_cfg, init_model, class_names, extra)
    del init_model
    step_module = TrainStep(model, args.setting, args.k, args.enhancer_bn)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)

    # per process; an incomplete last batch is dropped (BatchNorm cannot train on a single clip), and which
    # clips fall in it changes from epoch to epoch
    per_process = math.ceil(len(train_set) / world)
    batches_per_epoch = max(1, per_process // args.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / args.grad_accum)
    total_steps = args.epochs * steps_per_epoch
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(args.lr_scheduler, args.lr_warmup_steps, total_steps)
    )

    # the scheduler is stepped by hand (once per optimizer step), and the data never goes through prepare:
    # EpochSampler already deals each process its share, in an order resumption can reproduce
    ddp, optimizer = accelerator.prepare(step_module, optimizer)
    device = accelerator.device

    global_step, first_epoch, skip_batches = 0, 0, 0
    epoch_stats = _new_epoch_stats()
    nonfinite_total = consecutive_nonfinite = skipped_total = dropped_total = clips_total = 0
    first_skipped = None  # this process's first skipped file, for the message of a run without one clip
    if resume_from is not None:
        saved = read_json(resume_from / "state.json")
        for key in ("batch_size", "grad_accum"):
            if saved["args"].get(key) != getattr(args, key):
                raise ValueError(
                    f"{resume_from} was trained with {key}={saved['args'].get(key)}, not "
                    f"{getattr(args, key)}; resumption needs the same value"
                )
        if saved.get("world_size", 1) != world:
            raise ValueError(f"{resume_from} was written by {saved.get('world_size')} processes, this run has {world}")
        state = load_checkpoint(resume_from, model, optimizer, scheduler, rank=None)
        if accelerator.scaler is not None and (resume_from / "scaler.json").is_file():
            accelerator.scaler.load_state_dict(read_json(resume_from / "scaler.json"))
        global_step, first_epoch, skip_batches = state["global_step"], state["epoch"], state["batch_in_epoch"]
        epoch_stats = state["epoch_stats"]
        nonfinite_total, consecutive_nonfinite = state["nonfinite_total"], state["consecutive_nonfinite"]
        skipped_total, dropped_total = state.get("skipped_total", 0), state.get("dropped_total", 0)
        clips_total = state.get("clips_total")  # None: a checkpoint from before it was counted

    log = _Log(output_dir / "log.jsonl", main_proc, global_step if resume_from is not None else None)
    if main_proc:
        output_dir.mkdir(parents=True, exist_ok=True)
        if resume_from is None:
            (output_dir / "log.jsonl").unlink(missing_ok=True)
        for d in damaged:  # kept for inspection, out of the run's timeline
            logger.warning("moving the damaged %s aside to %s.damaged", d, d.name)
            _replace_dir(d, d.with_name(f"{d.name}.damaged"))
        for d in newer:  # a later timeline abandoned, as --overwrite-newer asked
            logger.warning("removing %s: it lies after the checkpoint this run resumes from (--overwrite-newer)", d)
            shutil.rmtree(d, ignore_errors=True)
        recipe = {k: getattr(args, k) for k in DEFAULTS}
        (output_dir / "train_args.json").write_text(json.dumps(recipe, indent=1, default=_json_default) + "\n")
    log.write(
        {
            "type": "resume" if resume_from else "start",
            "time": time.time(),
            "step": global_step,
            "world_size": world,
            "num_train": len(train_set),
            "num_val": len(val_set) if val_set else 0,
            "class_names": list(model.config.class_names),
            "total_steps": total_steps,
            "steps_per_epoch": steps_per_epoch,
            "resumed_from": str(resume_from) if resume_from else None,
            "args": {k: getattr(args, k) for k in DEFAULTS},
        }
    )

    # every process draws its own dropout masks; resumption puts each one's generators back
    set_seed(args.seed, device_specific=True)
    if resume_from is not None:
        rng_path = resume_from / f"rng-{rank}.safetensors"
        if rng_path.is_file():
            _set_rng_state(*_load_tensors_json(resume_from, f"rng-{rank}"))
        else:
            logger.warning("%s has no RNG state for process %d; resumption will not be exact", resume_from, rank)

    from tqdm.auto import tqdm

    bar = tqdm(
        total=total_steps,
        initial=global_step,
        desc="train",
        disable=not (args.progress and main_proc),
        dynamic_ncols=True,
    )
    trainable = [p for p in ddp.parameters() if p.requires_grad]
    last_ckpt = str(resume_from) if resume_from else None
    last_step_record: dict = {}
    last_epoch_record: dict = {}
    status = "finished"
    stop = global_step >= total_steps
    epoch, batch_idx = first_epoch, skip_batches - 1
    ddp.train()

    def checkpoint_state(epoch, batch_in_epoch):
        return {
            "format": "dtcm-checkpoint-v1",
            "global_step": global_step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "epoch_stats": epoch_stats,
            "nonfinite_total": nonfinite_total,
            "consecutive_nonfinite": consecutive_nonfinite,
            "skipped_total": skipped_total,
            "dropped_total": dropped_total,
            "clips_total": clips_total,
            "world_size": world,
            "time": time.time(),
            "args": {k: getattr(args, k) for k in DEFAULTS},
        }

    def checkpoint_now(epoch, batch_in_epoch) -> str:
        state = checkpoint_state(epoch, batch_in_epoch)
        path = save_checkpoint(
            accelerator, output_dir, global_step, ddp, optimizer, scheduler, state, args.checkpoints_total_limit
        )
        return str(path)

    for epoch in range(first_epoch, num_epochs if not stop else first_epoch):
        skip = skip_batches if epoch == first_epoch else 0
        if skip == 0:
            epoch_stats = _new_epoch_stats()
        train_set.set_epoch(epoch)
        sampler = EpochSampler(
            len(train_set),
            args.seed,
            epoch,
            True,
            rank,
            world,
            skip=skip * args.batch_size,
            limit=batches_per_epoch * args.batch_size,
        )
        loader = _loader(train_set, args.batch_size, args.num_workers, sampler, _seed_of(args.seed, epoch, 29))
        window = _new_window()
        t_step = time.perf_counter()
        batch_idx = skip - 1
        for batch_idx, batch in enumerate(loader, start=skip):
            window_end = (batch_idx + 1) % args.grad_accum == 0 or batch_idx + 1 == batches_per_epoch
            # accumulate() adds one and syncs when the count hits grad_accum: place it so that it syncs exactly
            # at the end of each window of grad_accum micro-batches, and at the end of every epoch
            accelerator.step = args.grad_accum - 1 if window_end else batch_idx % args.grad_accum
            n_local, skipped_local = len(batch["label"]), len(batch["skipped"])
            first_skipped = first_skipped or next(iter(batch["skipped"]), None)
            # BatchNorm cannot train on one clip: a batch that bad files shrank to one is dropped, and counted
            dropped_local = n_local if n_local < min(2, args.batch_size) else 0
            empty = _all_reduce(
                accelerator, [float(n_local == dropped_local), float(skipped_local), float(dropped_local)]
            )
            window["skipped"] += int(empty[1])
            window["dropped"] += int(empty[2])
            backward_here = False
            with accelerator.accumulate(ddp):
                if empty[0] == 0 and not window["bad"]:
                    if window["buffers"] is None:  # BatchNorm statistics as they were before this step
                        window["buffers"] = [b.detach().clone() for b in model.buffers()]
                    x = batch["video"].to(device, non_blocking=True)
                    labels = batch["label"].to(device)
                    logits, y, curves = ddp(x)
                    terms = compute_losses(
                        args.setting,
                        logits if logits is None else logits.float(),
                        labels,
                        x,
                        y,
                        curves,
                        args.alpha,
                        args.w_stc,
                    )
                    loss = terms["loss"]
                    if global_step + 1 in args.debug_nan_steps:
                        loss = loss * float("nan")
                        terms["loss"] = loss
                    correct = float((logits.argmax(1) == labels).sum()) if logits is not None else 0.0
                    vec = [float(not torch.isfinite(loss)), float(n_local), correct]
                    vec += [float(terms[t].detach()) * n_local for t in TERMS]
                    red = _all_reduce(accelerator, vec)
                    if red[0] > 0:  # a non-finite loss on any process: drop this window's gradients everywhere
                        window["bad"] = True
                        for p in trainable:
                            p.grad = None
                    else:
                        accelerator.backward(loss)
                        backward_here = True
                        window["backward"] = True
                    window["n"] += red[1]
                    window["correct"] += red[2]
                    for t, v in zip(TERMS, red[3:], strict=True):
                        window["terms"][t] += v
                if accelerator.sync_gradients:
                    ok, grad_norm = not window["bad"], None
                    if ok and window["backward"]:
                        if world > 1 and not backward_here:  # the window's last micro-batch was empty
                            _all_reduce_grads(trainable, world)
                        max_norm = args.max_grad_norm if args.max_grad_norm > 0 else float("inf")
                        grad_norm = float(accelerator.clip_grad_norm_(trainable, max_norm))
                        # with fp16, GradScaler itself skips an overflowing step and lowers its scale
                        if math.isfinite(grad_norm) or accelerator.scaler is not None:
                            optimizer.step()
                        else:
                            ok = False
                    if not ok and window["buffers"] is not None:  # a skipped step leaves the model as it was
                        with torch.no_grad():
                            for b, saved in zip(model.buffers(), window["buffers"], strict=True):
                                b.copy_(saved)
                    lr = scheduler.get_last_lr()[0]  # the rate this step used
                    with warnings.catch_warnings():  # after a skipped step torch thinks the order is wrong
                        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                        scheduler.step()
                    for p in trainable:
                        p.grad = None
            if not accelerator.sync_gradients:
                continue

            # ---------------------------------------------------------------------- one optimizer step done
            global_step += 1
            consecutive_nonfinite = 0 if ok else consecutive_nonfinite + 1
            nonfinite_total += int(not ok)
            skipped_total += window["skipped"]
            dropped_total += window["dropped"]
            n = window["n"]
            if ok and clips_total is not None:
                clips_total += int(n)
            record = {
                "type": "step",
                "step": global_step,
                "epoch": epoch,
                "batch": batch_idx + 1,
                "batches_per_epoch": batches_per_epoch,
                "total_steps": total_steps,
            }
            record.update({t: _finite_or_none(v / n) if n else None for t, v in window["terms"].items()})
            record.update(
                acc=window["correct"] / n if n and class_names is not None else None,
                lr=lr,
                grad_norm=grad_norm,
                nonfinite=not ok,
                clips=int(n),
                skipped_files=window["skipped"],
                dropped_clips=window["dropped"],
                clips_per_s=n / max(time.perf_counter() - t_step, 1e-9),
                time=time.time(),
            )
            if ok:
                epoch_stats["n"] += n
                epoch_stats["correct"] += window["correct"]
                epoch_stats["loss"] += window["terms"]["loss"]
            epoch_stats["skipped"] += window["skipped"]
            epoch_stats["nonfinite"] += int(not ok)
            last_step_record = record
            if global_step % args.log_every == 0 or not ok:
                log.write(record)
            bar.set_postfix(loss=record["loss"], acc=record["acc"], refresh=False)
            bar.update(1)
            want_stop = False
            if main_proc:
                want_stop = bool(callback(record)) if callback is not None else False
                want_stop = want_stop or (stop_event is not None and stop_event.is_set())
            if world > 1:
                want_stop = _all_reduce(accelerator, [float(want_stop)])[0] > 0
            if args.debug_step_delay:
                time.sleep(args.debug_step_delay)

            if consecutive_nonfinite >= args.max_nonfinite:
                message = (
                    f"training stopped at step {global_step}: {consecutive_nonfinite} optimizer steps in a row "
                    f"had a non-finite loss or gradient (the weights were not updated by them); last good "
                    f"checkpoint: {last_ckpt or 'none'}. Lower --lr, raise --max-grad-norm clipping or check the data."
                )
                log.write(
                    {
                        "type": "diverged",
                        "step": global_step,
                        "epoch": epoch,
                        "message": message,
                        "last_checkpoint": last_ckpt,
                        "time": time.time(),
                    }
                )
                bar.close()
                raise TrainingDiverged(message, last_ckpt)
            stop = want_stop or global_step >= total_steps
            if want_stop:
                status = "stopped"
            periodic = args.checkpoint_every and global_step % args.checkpoint_every == 0
            if (periodic or want_stop) and clips_total != 0:  # nothing is kept of a run that has seen no clip
                last_ckpt = checkpoint_now(epoch, batch_idx + 1)
            window = _new_window()
            t_step = time.perf_counter()
            if stop:
                break

        # --------------------------------------------------------------------------------------- epoch end
        if status == "stopped":
            break
        partial = batch_idx + 1 < batches_per_epoch
        last_epoch_record = _epoch_end(accelerator, args, model, val_set, epoch, global_step, epoch_stats, partial)
        ddp.train()  # evaluation left every part of the model in train mode; re-freeze what the setting freezes
        log.write(last_epoch_record)
        want_stop = bool(callback(last_epoch_record)) if main_proc and callback is not None else False
        want_stop = want_stop or (stop_event is not None and stop_event.is_set())
        if world > 1:
            want_stop = _all_reduce(accelerator, [float(want_stop)])[0] > 0
        if want_stop:
            status = "stopped"
        if stop or want_stop:
            break
    bar.close()

    # ----------------------------------------------------------------------------------------------- the end
    if clips_total == 0:
        first = f" (first: {first_skipped})" if first_skipped else ""
        dropped = f" and {dropped_total} dropped from batches that shrank to one clip" if dropped_total else ""
        raise ValueError(
            f"no usable clip in {args.data}: {skipped_total} clips read were skipped as missing or undecodable"
            f"{first}{dropped}; nothing was trained, so no model was saved"
        )
    if last_ckpt is None or Path(last_ckpt).name != f"checkpoint-{global_step}":
        last_ckpt = checkpoint_now(epoch, batch_idx + 1)
    final = output_dir / "final"
    _broadcast_buffers(accelerator, model)
    digest = weights_hash(model)
    hashes = _gather_objects(accelerator, digest)
    if main_proc:
        tmp = output_dir / ".tmp-final"
        shutil.rmtree(tmp, ignore_errors=True)
        summary_extra = {**model.config.extra, "steps": global_step, "epoch": epoch}
        if last_epoch_record.get("val_top1") is not None:
            summary_extra.update(val_top1=last_epoch_record["val_top1"], val_top5=last_epoch_record["val_top5"])
        model.save_pretrained(tmp, config=model.config.replace(extra=summary_extra))
        _replace_dir(tmp, final)
    accelerator.wait_for_everyone()
    if len(set(hashes)) > 1:
        raise RuntimeError(f"the {world} processes ended with different weights: {hashes}")
    summary = {
        "status": status,
        "output_dir": str(output_dir),
        "final": str(final),
        "checkpoint": last_ckpt,
        "steps": global_step,
        "epoch": epoch,
        "metrics": last_step_record,
        "epoch_metrics": last_epoch_record,
        "nonfinite_steps": nonfinite_total,
        "skipped_files": skipped_total,
        "dropped_clips": dropped_total,
        "weights_sha256": digest,
    }
    log.write({"type": "end", **summary, "rank_weights_sha256": hashes, "time": time.time()})
    return summary


def _new_epoch_stats() -> dict:
    return {"n": 0.0, "correct": 0.0, "loss": 0.0, "skipped": 0, "nonfinite": 0}


def _new_window() -> dict:
    return {
        "n": 0.0,
        "correct": 0.0,
        "terms": dict.fromkeys(TERMS, 0.0),
        "skipped": 0,
        "dropped": 0,
        "bad": False,
        "backward": False,
        "buffers": None,
    }


def _epoch_end(accelerator, args, model, val_set, epoch, step, stats, partial) -> dict:
    n = stats["n"]
    record = {
        "type": "epoch",
        "epoch": epoch,
        "step": step,
        "partial": partial,
        "train_acc": stats["correct"] / n if n and args.setting != "enhancer-only" else None,
        "train_loss": stats["loss"] / n if n else None,
        "skipped_files": stats["skipped"],
        "nonfinite_steps": stats["nonfinite"],
        "val_top1": None,
        "val_top5": None,
        "val_n": 0,
    }
    if val_set is not None and args.setting != "enhancer-only":
        _broadcast_buffers(accelerator, model)
        sampler = EpochSampler(
            len(val_set), shuffle=False, rank=accelerator.process_index, world_size=accelerator.num_processes, pad=False
        )
        loader = _loader(val_set, args.batch_size, args.num_workers, sampler, _seed_of(args.seed, epoch, 31))
        res = evaluate_loader(model, loader, k=args.k, device=accelerator.device)
        c1, c5, vn, vskip = _all_reduce(accelerator, [res["correct1"], res["correct5"], res["n"], res["skipped"]])
        record.update(
            val_top1=c1 / vn if vn else None,
            val_top5=c5 / vn if vn else None,
            val_n=int(vn),
            val_skipped_files=int(vskip),
        )
    record["time"] = time.time()
    return record


def _all_reduce(accelerator, values: list[float]) -> list[float]:
    """Sum a few numbers over processes (identity with one process)."""
    if accelerator.num_processes == 1:
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=accelerator.device)
    torch.distributed.all_reduce(t)
    return t.tolist()


def _broadcast_buffers(accelerator, model) -> None:
    """Give every process the main process's BatchNorm statistics, as DDP does at the start of each forward."""
    if accelerator.num_processes > 1:
        for b in model.buffers():
            torch.distributed.broadcast(b, src=0)


def _all_reduce_grads(params, world: int) -> None:
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        torch.distributed.all_reduce(p.grad)
        p.grad /= world


def _gather_objects(accelerator, obj) -> list:
    if accelerator.num_processes == 1:
        return [obj]
    out = [None] * accelerator.num_processes
    torch.distributed.all_gather_object(out, obj)
    return out


# ------------------------------------------------------------------------------------------------------- CLI
def cli_main(args) -> int:
    """``dtcm train``: run ``main`` with a tqdm bar and print where the model went."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = main(args)
    except TrainingDiverged as exc:
        print(f"dtcm train: {exc}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) == 0:
        ep = summary["epoch_metrics"] or {}
        val = f", val top-1 {ep['val_top1']:.3f}" if ep.get("val_top1") is not None else ""
        print(f"{summary['status']} after {summary['steps']} steps{val}; model: {summary['final']}")
    return 0


if __name__ == "__main__":
    from dtcm.cli import main as _cli

    sys.exit(_cli(["train", *sys.argv[1:]]))

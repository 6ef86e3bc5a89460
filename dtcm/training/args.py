"""Training arguments: the one home of their defaults and bounds, recipes, precedence and the ``dtcm train`` flags.

Every hyper-parameter comes from ``DEFAULTS`` < a resumed checkpoint's arguments < ``--recipe FILE.json``
(a JSON object of the same keys as the flags, e.g. ``{"lr": 1e-3, "w_stc": 4}``) < flags given on the
command line. Torch-free, so the service's fine-tune form can read ``DEFAULTS`` and ``BOUNDS``:

    >>> DEFAULTS["lr"], BOUNDS["lr"], BOUNDS["batch_size"]  # (lowest, whether the lowest itself is refused)
    (1e-05, (0.0, True), (1, False))
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from dtcm.checksums import read_json
from dtcm.config import ENHANCERS, MIN_CURVE_SIZE, DTCMConfig

__all__ = [
    "BOUNDS",
    "DEFAULTS",
    "SETTINGS",
    "add_cli_arguments",
    "parse_args",
    "read_recipe",
    "resolve_args",
]

SETTINGS = ("one-stage-total", "one-stage-ar", "two-stage", "enhancer-only")
ENHANCER_BN = ("batch", "frozen")
SCHEDULERS = ("cosine", "linear", "constant")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")

DEFAULTS: dict = dict(
    data=None,  # training clips: a split list, a dataset folder (ARID / synthetic) or a folder per class
    val_data=None,  # validation clips in the same forms; 1-clip centre-crop Top-1/Top-5 at each epoch end
    split=1,  # which split's lists to read inside a dataset folder (ARID has 1-3)
    data_root=None,  # every clip of data and val_data must lie inside this folder (uploads); None: anywhere
    model="dtcm_mobilenetv2",  # variant of dtcm.model.list_models() to build when no init is given
    backbone=None,  # override the variant's backbone (dtcm.backbones registry name)
    width_mult=None,  # override the backbone width multiplier (MobileNetV2 / ShuffleNetV2)
    enhancer=None,  # override the enhancer: lightdce, zerodce or none
    init=None,  # model folder, Hub id or i3d-kinetics400 to start from; a head of other classes starts fresh
    enhancer_init=None,  # model folder or Hub id whose enhancer weights are copied in (two-stage's enhancer)
    setting="one-stage-total",  # one of SETTINGS
    alpha=DTCMConfig.alpha,  # weight of the enhancement losses in L_total (Eq. 7)
    w_stc=DTCMConfig.w_stc,  # weight of L_STC (Eq. 7)
    k=DTCMConfig.k,  # frame-sharing factor during training (SPEC A3)
    curve_size=None,  # estimate the curves on keyframes downscaled to this short side; None: the model's
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
# name -> (lowest accepted value, whether that value itself is refused). No ceilings: a server adds its own.
INTEGER_BOUNDS = {
    **dict.fromkeys(("k", "batch_size", "grad_accum", "epochs", "log_every", "max_nonfinite"), (1, False)),
    **dict.fromkeys(
        ("split", "num_workers", "checkpoint_every", "checkpoints_total_limit", "lr_warmup_steps", "seed"), (0, False)
    ),
}
FLOAT_BOUNDS = {
    "lr": (0.0, True),
    **dict.fromkeys(("alpha", "w_stc", "weight_decay", "max_grad_norm", "debug_step_delay"), (0.0, False)),
}
BOUNDS = {**INTEGER_BOUNDS, **FLOAT_BOUNDS}
_NOT_IN_RECIPES = ("recipe", "resume", "overwrite_newer")
_TEST_HOOKS = ("progress", "debug_nan_steps", "debug_step_delay")  # never inherited from a checkpoint


def _default(name: str) -> str:
    """A default as the flags' help shows it (``1e-5``, ``4``, ``0.01``)."""
    value = DEFAULTS[name]
    return f"{value:g}".replace("e-0", "e-") if isinstance(value, float) else str(value)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``dtcm train``; every default is None so recipes and checkpoints can fill them (see DEFAULTS)."""
    from dtcm.data.augment import AUGMENTS

    d = _default
    g = parser.add_argument_group("data")
    g.add_argument("--data", help="training clips: split list (.txt/.csv), dataset folder or folder per class")
    g.add_argument("--val-data", help="validation clips (same forms); evaluated at every epoch end")
    g.add_argument("--split", type=int, help=f"split number to read inside a dataset folder (default {d('split')})")
    g.add_argument("--data-root", help="refuse list entries outside this folder (absolute or ../ paths)")
    g.add_argument("--clip-len", type=int, help="frames per clip (default: the model's)")
    g.add_argument("--crop", type=int, help="crop size (default: the model's)")
    g.add_argument("--short-side", type=int, help="resize the short side to this before cropping")
    g.add_argument("--num-workers", type=int, help=f"DataLoader workers per process (default {d('num_workers')})")
    g.add_argument("--cache", action="store_const", const=True, help="keep decoded videos in memory")
    g.add_argument("--augment", choices=list(AUGMENTS), help=f"training augmentation (default {d('augment')})")
    g = parser.add_argument_group("model")
    g.add_argument("--model", help=f"variant to build when no --init (default {d('model')}; dtcm.model.list_models())")
    g.add_argument("--backbone", help="override the variant's backbone")
    g.add_argument("--width-mult", type=float, help="backbone width multiplier")
    g.add_argument("--enhancer", choices=list(ENHANCERS), help="override the enhancer")
    g.add_argument(
        "--init",
        help="model folder or Hub id to start from (head re-initialised if classes differ); i3d-kinetics400: the "
        "Kinetics I3D that `dtcm import-i3d` converted",
    )
    g.add_argument("--enhancer-init", help="model folder or Hub id to copy the enhancer weights from")
    g = parser.add_argument_group("objective")
    g.add_argument("--setting", choices=SETTINGS, help=f"what is trained and with which loss (default {d('setting')})")
    g.add_argument("--alpha", type=float, help=f"weight of the enhancement losses (Eq. 7, default {d('alpha')})")
    g.add_argument("--w-stc", type=float, help=f"weight of L_STC (Eq. 7, default {d('w_stc')})")
    g.add_argument("--k", type=int, help=f"frame-sharing factor while training (default {d('k')})")
    g.add_argument(
        "--curve-size",
        type=int,
        help="estimate the curves on keyframes downscaled to this short side, e.g. 56 for 112x112 clips (a "
        "quarter of the enhancer's work; saved in the model's config, so inference does the same); default: the "
        "model's (full size)",
    )
    g.add_argument(
        "--enhancer-bn",
        choices=ENHANCER_BN,
        help="the enhancer's BatchNorm while it trains: batch statistics (default), or its running statistics "
        "kept frozen (fine-tuning an enhancer whose statistics come from other footage)",
    )
    _add_optimisation_arguments(parser.add_argument_group("optimisation"))
    g = parser.add_argument_group("output")
    g.add_argument("--output-dir", help=f"run folder (default {d('output_dir')})")
    g.add_argument(
        "--checkpoint-every", type=int, help=f"optimizer steps between checkpoints (default {d('checkpoint_every')})"
    )
    g.add_argument(
        "--checkpoints-total-limit", type=int, help=f"newest checkpoints kept (default {d('checkpoints_total_limit')})"
    )
    g.add_argument("--log-every", type=int, help=f"steps between log.jsonl step records (default {d('log_every')})")
    g.add_argument("--no-progress", dest="progress", action="store_const", const=False, help="no tqdm bar")
    a = parser.add_argument
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


def _add_optimisation_arguments(g) -> None:
    d = _default
    g.add_argument("--lr", type=float, help=f"AdamW learning rate (default {d('lr')})")
    g.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default {d('weight_decay')})")
    g.add_argument("--lr-scheduler", choices=SCHEDULERS, help=f"learning-rate schedule (default {d('lr_scheduler')})")
    g.add_argument("--lr-warmup-steps", type=int, help=f"linear warm-up steps (default {d('lr_warmup_steps')})")
    g.add_argument(
        "--max-grad-norm", type=float, help=f"clip the gradient norm to this; 0 disables (default {d('max_grad_norm')})"
    )
    g.add_argument("--batch-size", type=int, help=f"clips per process per micro-batch (default {d('batch_size')})")
    g.add_argument("--grad-accum", type=int, help=f"micro-batches per optimizer step (default {d('grad_accum')})")
    g.add_argument("--epochs", type=int, help=f"passes over the training set (default {d('epochs')})")
    g.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    g.add_argument("--seed", type=int, help=f"seed of everything random (default {d('seed')})")
    g.add_argument("--mixed-precision", choices=list(MIXED_PRECISION), help=f"default {d('mixed_precision')}")
    g.add_argument(
        "--max-nonfinite", type=int, help=f"non-finite steps in a row that stop training (default {d('max_nonfinite')})"
    )


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.replace(",", " ").split())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``dtcm train`` flags and resolve them against recipe, checkpoint and defaults."""
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
    if explicit.get("resume"):
        layers.append(_resumed_args(explicit))
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


def _resumed_args(explicit: dict) -> dict:
    """The arguments saved in the checkpoint ``--resume`` names (none when there is no checkpoint yet)."""
    from dtcm.training.checkpoint import find_resume

    out = explicit.get("output_dir") or (
        read_recipe(explicit["recipe"]).get("output_dir") if "recipe" in explicit else None
    )
    ckpt = find_resume(explicit["resume"], out or DEFAULTS["output_dir"], warn=False)
    if ckpt is None:
        return {}
    saved = read_json(ckpt / "state.json").get("args", {})
    inherit = set(DEFAULTS) - set(_TEST_HOOKS)
    return {k: v for k, v in saved.items() if k in inherit and v is not None}


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
    from dtcm.data.augment import AUGMENTS

    def need(ok, what):
        if not ok:
            raise ValueError(what)

    need(a["data"] is not None, "no training data: pass --data (a split list, dataset folder or class folders)")
    need(a["setting"] in SETTINGS, f"setting must be one of {', '.join(SETTINGS)}, got {a['setting']!r}")
    need(a["enhancer_bn"] in ENHANCER_BN, f"enhancer_bn must be batch or frozen, got {a['enhancer_bn']!r}")
    need(a["augment"] in AUGMENTS, f"augment must be one of {', '.join(AUGMENTS)}, got {a['augment']!r}")
    need(a["lr_scheduler"] in SCHEDULERS, f"lr_scheduler must be one of {SCHEDULERS}, got {a['lr_scheduler']!r}")
    need(a["mixed_precision"] in MIXED_PRECISION, f"bad mixed_precision {a['mixed_precision']!r}")
    for name, (low, _) in INTEGER_BOUNDS.items():
        need(isinstance(a[name], int) and a[name] >= low, f"{name} must be an integer >= {low}, got {a[name]!r}")
    need(a["max_steps"] is None or (isinstance(a["max_steps"], int) and a["max_steps"] >= 1), "max_steps must be >= 1")
    need(
        a["curve_size"] is None or (isinstance(a["curve_size"], int) and a["curve_size"] >= MIN_CURVE_SIZE),
        f"curve_size must be an integer >= {MIN_CURVE_SIZE}, got {a['curve_size']!r}",
    )
    for name, (low, exclusive) in FLOAT_BOUNDS.items():
        ok = a[name] > low if exclusive else a[name] >= low
        need(ok, f"{name} must be {'>' if exclusive else '>='} {low:g}, got {a[name]}")

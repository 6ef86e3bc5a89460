"""``dtcm train`` and the old import path of the training package (``dtcm.training``).

Usage:
    python -m dtcm.train --data data/synth --model dtcm_mobilenetv2 --output-dir runs/synth
    dtcm train --recipe weights/recipes/wstc4.json --output-dir runs/synth
    dtcm train --output-dir runs/synth --resume            # continue exactly where it stopped
    dtcm train --output-dir runs/synth --resume runs/synth/checkpoint-500 --overwrite-newer   # branch off
    torchrun --nproc_per_node 2 -m dtcm.train ...           # several CPU processes (gloo, MULTI_CPU)
    accelerate launch --multi_gpu --num_processes 4 -m dtcm.train ...   # several GPUs (NCCL)

Output folder:
    log.jsonl             one JSON record per line: start / step / epoch / end (and diverged)
    train_args.json       the resolved arguments (a valid recipe)
    checkpoint-STEP/      model/ (save_pretrained), optimizer.safetensors + .json, scheduler.json,
                          rng-RANK.safetensors + .json, state.json and checksums.sha256 (written last);
                          the newest few kept
    final/                the trained model (save_pretrained; config with class names, k, alpha, W_STC)

``--enhancer-bn frozen`` keeps the enhancer's BatchNorm layers on their running statistics while its weights
train. ``--resume`` checks the checkpoint's checksums first: a damaged newest checkpoint is moved aside (to
``checkpoint-STEP.damaged``, with a warning) and the run resumes from the newest good one. Resuming from a
checkpoint older than others of the run (or than ``final/``) is refused unless ``--overwrite-newer``. Bad
clips are skipped and counted; a run that trains on no clip at all fails and saves no model. Resuming
continues exactly: each epoch's data order and clips are functions of (seed, epoch), and optimizer,
scheduler and every process's RNG states are restored. One training run per process at a time.
"""

from __future__ import annotations

import sys

from dtcm.cli.train import cli_main
from dtcm.evaluate import evaluate_loader
from dtcm.training.args import DEFAULTS, SETTINGS, add_cli_arguments, parse_args, read_recipe, resolve_args
from dtcm.training.checkpoint import KILL_IN_CHECKPOINT_ENV, latest_checkpoint, load_checkpoint, save_checkpoint
from dtcm.training.distributed import weights_hash
from dtcm.training.loop import TrainingDiverged, main
from dtcm.training.sampler import EpochSampler
from dtcm.training.step import TERMS, TrainStep, compute_losses

__all__ = [
    "DEFAULTS",
    "KILL_IN_CHECKPOINT_ENV",
    "SETTINGS",
    "TERMS",
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


if __name__ == "__main__":
    from dtcm.cli import main as _cli

    sys.exit(_cli(["train", *sys.argv[1:]]))

"""What the loop is built from (``Run``) and what it carries from step to step (``LoopState``, ``Window``)."""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dtcm.training.args import DEFAULTS
from dtcm.training.log import Log
from dtcm.training.step import TERMS

__all__ = ["LoopState", "Run", "Window", "new_epoch_stats"]


def new_epoch_stats() -> dict:
    return {"n": 0.0, "correct": 0.0, "loss": 0.0, "skipped": 0, "nonfinite": 0}


@dataclass
class LoopState:
    """Everything the loop carries from step to step; a checkpoint's ``state.json`` is made of it."""

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # micro-batches of ``epoch`` done
    epoch_stats: dict = field(default_factory=new_epoch_stats)
    nonfinite_total: int = 0
    consecutive_nonfinite: int = 0
    skipped_total: int = 0
    dropped_total: int = 0
    clips_total: int | None = 0  # None: resumed from a checkpoint from before it was counted
    first_skipped: str | None = None  # this process's first skipped file, for the message of a run without one
    last_ckpt: str | None = None
    last_step_record: dict = field(default_factory=dict)
    last_epoch_record: dict = field(default_factory=dict)
    status: str = "finished"

    def to_checkpoint(self, args, world: int) -> dict:
        """The checkpoint's ``state.json``: the counters a resume needs, the process count and the arguments."""
        return {
            "format": "dtcm-checkpoint-v1",
            "global_step": self.global_step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "epoch_stats": self.epoch_stats,
            "nonfinite_total": self.nonfinite_total,
            "consecutive_nonfinite": self.consecutive_nonfinite,
            "skipped_total": self.skipped_total,
            "dropped_total": self.dropped_total,
            "clips_total": self.clips_total,
            "world_size": world,
            "time": time.time(),
            "args": {k: getattr(args, k) for k in DEFAULTS},
        }

    def resume_from(self, saved: dict) -> None:
        """Take the counters of a checkpoint's ``state.json``."""
        for key in (
            "global_step",
            "epoch",
            "batch_in_epoch",
            "epoch_stats",
            "nonfinite_total",
            "consecutive_nonfinite",
        ):
            setattr(self, key, saved[key])
        self.skipped_total, self.dropped_total = saved.get("skipped_total", 0), saved.get("dropped_total", 0)
        self.clips_total = saved.get("clips_total")  # None: a checkpoint from before it was counted


@dataclass
class Window:
    """The micro-batches of one optimizer step, summed over processes."""

    n: float = 0.0
    correct: float = 0.0
    terms: dict = field(default_factory=lambda: dict.fromkeys(TERMS, 0.0))
    skipped: int = 0
    dropped: int = 0
    bad: bool = False  # a non-finite loss on some process: this step is skipped everywhere
    backward: bool = False  # some micro-batch went backward
    buffers: list | None = None  # BatchNorm statistics as they were before this step


@dataclass
class Run:
    """What a run is made of; fixed once the loop starts."""

    args: argparse.Namespace
    accelerator: object
    output_dir: Path
    model: torch.nn.Module  # the DTCM (unwrapped)
    ddp: torch.nn.Module  # its TrainStep, as prepared by Accelerate
    optimizer: object
    scheduler: object
    train_set: object
    val_set: object
    class_names: tuple | None  # None for enhancer-only
    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    num_epochs: int
    callback: Callable[[dict], bool | None] | None
    stop_event: threading.Event | None
    trainable: list = field(default_factory=list)
    log: Log | None = None
    bar: object = None

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

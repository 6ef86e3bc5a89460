"""``dtcm train``: the training arguments (``dtcm.training.args``) and a run with a progress bar."""

from __future__ import annotations

import logging
import os
import sys

from dtcm.training.args import add_cli_arguments

__all__ = ["add_cli_arguments", "cli_main"]


def cli_main(args) -> int:
    """``dtcm train``: run ``main`` with a tqdm bar and print where the model went."""
    from dtcm.training.loop import TrainingDiverged, main

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

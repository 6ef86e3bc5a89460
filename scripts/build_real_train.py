"""Build the real-footage training set: ARID-format lists of real clips of people, as filmed and darkened.

    python scripts/build_real_train.py --shared ../shared/data --out data/real-train

Sources: the clips of ``../shared/data/actions_train/{Walk,Sit,Jump}`` (research-licensed: the output stays in
the git-ignored ``data/``) except the ones ``weights/recipes/real_val_holdout.txt`` holds out for the real
validation set (``scripts/build_real_val.py``); building fails if a held-out file would be written. Clips
longer than ``WINDOW`` frames are cut into windows of that many frames. And, as Walk, windows of the street
of people walking in ``real/vtest.avi`` that end ``STREET_GAP`` frames before the validation set's last
``VTEST_TAIL`` frames of it begin (sets built before this rule, for the recipes up to ``real_v1s4_newenh_d``,
had the 256 actions_train clips only).

Every clip is resized to short side 128 (what the models read) and written as filmed (``raw/``) and once per
darkness in ``TARGET_DV`` (``dark0/``, ``dark1/``, ...) through the low-light camera model
(``dtcm.data.synthetic.darken``, exposure chosen so that Dv lands on the target; ARID's is about -0.88).
``classInd.txt`` and ``split1_train.txt`` (every version) / ``split1_test.txt`` (the raw clips, a sanity
check only: they are training clips) go into the folder; ``real_train.json`` lists every clip with its
source, condition, darkness and exposure.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_set as rs  # noqa: E402

HOLDOUT_LIST = rs.HOLDOUT_LIST

CLASSES = ("Walk", "Sit", "Jump")  # the classes actions_train has
WINDOW = 32  # frames per clip cut from a longer video (the one-room windows are 30 frames)
TARGET_DV = (-0.85, -0.89, -0.94)  # darkness of each darkened copy: ARID's -0.88 and either side of it
STREET_GAP = 32  # frames between the last street training window and the first validation one


def read_holdout(path: Path = HOLDOUT_LIST) -> set[str]:
    """The held-out ``Class/file`` names (comments and blank lines skipped)."""
    if not path.is_file():
        raise FileNotFoundError(f"no hold-out list at {path}; run scripts/build_real_val.py first")
    lines = (ln.strip() for ln in path.read_text().splitlines())
    held = {ln for ln in lines if ln and not ln.startswith("#")}
    if not held:
        raise ValueError(f"{path} lists no held-out clips; refusing to train on every clip")
    return held


def training_files(shared: Path, held: set[str]) -> list[str]:
    """The ``Class/file`` names of ``actions_train`` that are not held out, in natural order."""
    root = shared / "actions_train"
    if not root.is_dir():
        raise FileNotFoundError(f"{shared} holds no actions_train/; pass --shared the shared data folder")
    missing = sorted(h for h in held if not (root / h).is_file())
    if missing:
        raise FileNotFoundError(f"held-out clips {missing[:3]} are not in {root}; the hold-out list is stale")
    files = []
    for name in CLASSES:
        folder = root / name
        names = sorted((p.name for p in folder.iterdir() if p.is_file()), key=rs.natural_key) if folder.is_dir() else []
        files += [f"{name}/{f}" for f in names if f"{name}/{f}" not in held]
    return files


def check_no_holdout(rows: list[tuple[str, str]], held: set[str]) -> None:
    """Raise if any written clip comes from a held-out file; ``rows`` are ``(written path, source)``."""
    leaked = sorted({src for _, src in rows if src in held})
    if leaked:
        raise RuntimeError(f"held-out clips {leaked[:3]} reached the training set; they must stay out of it")


def street_clips(shared: Path):
    """``(name, source, frames, fps)`` of the street windows that training may use (before the held-out tail)."""
    frames, fps = rs.read(shared / rs.VTEST)
    end = len(frames) - rs.VTEST_TAIL - STREET_GAP
    for a in range(0, end - WINDOW + 1, WINDOW):
        yield f"vtest_{a:04d}", f"{rs.VTEST} {a}-{a + WINDOW - 1}", frames[a : a + WINDOW], fps


def _windows(n: int) -> list[tuple[int, int]]:
    """Whole clip when it is short, else consecutive non-overlapping windows of ``WINDOW`` frames."""
    if n < 2 * WINDOW:
        return [(0, n)]
    return [(a, a + WINDOW) for a in range(0, n - WINDOW + 1, WINDOW)]


def _clips(shared: Path, files: list[str], held: set[str]):
    """``(class, source file, name, source text, frames, fps)`` of every training clip, in a fixed order."""
    for rel in files:
        check_no_holdout([(rel, rel)], held)
        cls = rel.split("/")[0]
        frames, fps = rs.read(shared / "actions_train" / rel)
        for a, b in _windows(len(frames)):
            name = Path(rel).stem if (a, b) == (0, len(frames)) else f"{Path(rel).stem}_{a:04d}"
            yield cls, rel, name, f"actions_train/{rel} {a}-{b - 1}", frames[a:b], fps
    for name, source, frames, fps in street_clips(shared):
        yield "Walk", rs.VTEST, name, source, frames, fps


def build(shared: Path, out: Path, seed: int = 0) -> dict:
    """Write the set; returns the summary also written to ``real_train.json``."""
    held = read_holdout()
    files = training_files(shared, held)
    conditions = ("raw",) + tuple(f"dark{i}" for i in range(len(TARGET_DV)))
    rows: dict[str, list[tuple[int, str]]] = {c: [] for c in conditions}
    sources: list[tuple[str, str]] = []
    entries = []
    for i, (cls, rel, name, source, clip, fps) in enumerate(_clips(shared, files, held)):
        versions = {"raw": (clip, None)}
        for j, dv in enumerate(TARGET_DV):
            versions[f"dark{j}"] = rs.darken(clip, [seed, i, j], target_dv=dv)
        for condition, (f, exposure) in versions.items():
            entry = rs.write_clip(out, condition, cls, name, f, fps, exposure, source)
            rows[condition].append((rs.class_id(cls), entry["path"]))
            sources.append((entry["path"], rel))
            entries.append(entry)
    check_no_holdout(sources, held)
    rs.write_class_index(out)
    rs.write_split(out / "split1_train.txt", [r for c in conditions for r in rows[c]])
    rs.write_split(out / "split1_test.txt", rows["raw"])
    summary = rs.summarise(entries, conditions) | {"sources": len(files), "seed": seed}
    summary |= {"held_out": len(held), "target_dv": list(TARGET_DV)}
    rs.write_summary(out / "real_train.json", summary, entries)
    return summary


def _headline(s: dict, out: str) -> str:
    return f"wrote {s['clips']} clips from {s['sources']} files to {out} ({s['held_out']} held-out files left out)"


if __name__ == "__main__":
    raise SystemExit(rs.main(__doc__, build, "data/real-train", _headline))

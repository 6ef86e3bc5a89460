"""Build the real-footage validation set: ARID-format lists of real clips of people, as filmed and darkened.

    python scripts/build_real_val.py --shared ../shared/data --out data/real-val

Sources (all in ``../shared/data``, research-licensed: the output stays in the git-ignored ``data/``):

* ``actions_train/{Walk,Sit,Jump}``: the last quarter of the one-room ``fbwin_*`` windows of each class
  (they are consecutive one-second windows of one video, so every 4th one would sit beside its training
  neighbours), and the one Jump clip whole (its take-off, frames 30-78). The held-out files are written to
  ``weights/recipes/real_val_holdout.txt`` so that training can leave them out.
* ``lowlight_video/ken_night_person_walking.mp4``: 8 windows of 32 frames over the first 500 (a person
  walking through a dark yard; the close-up at the end is left out). Filmed dark (Dv about -0.97, darker
  than ARID), so it is not darkened again.
* ``real/vtest.avi``: 5 windows of 32 frames over its last 160 frames (people walking), the frames
  ``scripts/make_real_dark.py`` keeps away from the enhancer's training.

Every clip is resized to short side 128 (what the models read) and written twice: ``filmed/`` as it is, and
``darkened/`` through the low-light camera model (``dtcm.data.synthetic.darken``, exposure chosen for ARID's
Dv -0.88). ``filmed/``, ``darkened/`` and the folder itself each get ``classInd.txt`` and ``split1_test.txt``;
``real_val.json`` lists every clip with its source, condition, darkness and exposure.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_set as rs  # noqa: E402

HOLDOUT_LIST = rs.HOLDOUT_LIST

HOLDOUT_SHARE = 0.25  # the last quarter of each class's fbwin_* windows
KEN = "lowlight_video/ken_night_person_walking.mp4"
KEN_WINDOWS = (8, 32, 500)  # windows, frames each, over the first frames
VTEST = rs.VTEST
VTEST_WINDOWS = (5, 32, rs.VTEST_TAIL)  # windows, frames each, over the last frames
JUMP_FRAMES = (30, 78)  # the take-off of hoyeneyi_jumping.mp4 (then it hangs from a bar)


def holdout(shared: Path) -> list[str]:
    """The held-out ``Class/file`` names of ``actions_train``: the last quarter of each class's ``fbwin_*``
    windows, and a class's only clip when it has one."""
    held = []
    for name in ("Walk", "Sit", "Jump"):
        files = sorted((p.name for p in (shared / "actions_train" / name).iterdir()), key=rs.natural_key)
        room = [f for f in files if f.startswith("fbwin_")]
        if len(files) == 1:
            held += [f"{name}/{files[0]}"]
        elif room:
            n = int(np.ceil(HOLDOUT_SHARE * len(room)))
            held += [f"{name}/{f}" for f in room[-n:]]
    return held


def _windows(n_frames: int, count: int, length: int, first: int, last: int) -> list[tuple[int, int]]:
    starts = np.linspace(first, last - length, count).round().astype(int)
    return [(int(s), int(s) + length) for s in starts if s >= 0 and s + length <= n_frames]


def clips(shared: Path, held: list[str]):
    """Yield ``(name, class, source, frames, fps, darken)`` for every clip of the set."""
    for rel in held:
        cls = rel.split("/")[0]
        path = shared / "actions_train" / rel
        frames, fps = rs.read(path)
        if cls == "Jump":
            frames = frames[slice(*JUMP_FRAMES)]
        yield Path(rel).stem, cls, f"actions_train/{rel}", frames, fps, True
    for rel, (count, length, span), tail, dark in (
        (KEN, KEN_WINDOWS, False, False),
        (VTEST, VTEST_WINDOWS, True, True),
    ):
        frames, fps = rs.read(shared / rel)
        n = len(frames)
        first, last = (n - span, n) if tail else (0, min(span, n))
        windows = _windows(n, count, length, first, last)
        if len(windows) < count:
            raise ValueError(f"{rel} has {n} frames, too few for {count} windows of {length}")
        for a, b in windows:
            yield f"{Path(rel).stem}_{a:04d}", "Walk", f"{rel} frames {a}-{b - 1}", frames[a:b], fps, dark


def build(shared: Path, out: Path, seed: int = 0) -> dict:
    """Write the set; returns the summary also written to ``real_val.json``."""
    if not (shared / "actions_train").is_dir():
        raise FileNotFoundError(f"{shared} holds no actions_train/; pass --shared the shared data folder")
    held = holdout(shared)
    HOLDOUT_LIST.write_text(
        "# actions_train clips held out for the real validation set (scripts/build_real_val.py); training\n"
        "# on ../shared/data/actions_train must leave these out. Class/file, relative to actions_train/.\n"
        + "".join(f"{h}\n" for h in held)
    )
    rows = {"filmed": [], "darkened": []}
    entries = []
    for i, (name, cls, source, frames, fps, dark) in enumerate(clips(shared, held)):
        versions = {"filmed": (frames, None)}
        if dark:
            versions["darkened"] = rs.darken(frames, [seed, i])
        for condition, (f, exposure) in versions.items():
            entries.append(rs.write_clip(out, condition, cls, name, f, fps, exposure, source))
            rows[condition].append((rs.class_id(cls), f"{cls}/{name}.mp4"))
    every = []
    for condition, lines in rows.items():
        rs.write_class_index(out / condition)
        rs.write_split(out / condition / "split1_test.txt", lines)
        every += [(c, f"{condition}/{p}") for c, p in lines]
    rs.write_class_index(out)
    rs.write_split(out / "split1_test.txt", every)
    summary = rs.summarise(entries, rows) | {"holdout": len(held), "seed": seed}
    rs.write_summary(out / "real_val.json", summary, entries)
    return summary


def _headline(s: dict, out: str) -> str:
    return f"wrote {s['clips']} clips to {out} ({s['holdout']} held-out actions_train files)"


if __name__ == "__main__":
    raise SystemExit(rs.main(__doc__, build, "data/real-val", _headline))

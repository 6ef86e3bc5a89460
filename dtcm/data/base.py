"""The clip dataset every format shares: sampling, cropping, skipping bad files, collation (SPEC A7).

Training clips are ``clip_len`` consecutive frames (stride 1) from a random start plus a random crop;
test clips are the centred window plus the centre crop (the paper's 1-clip centre-crop). Clips shorter
than ``clip_len`` are padded by looping. Frames are decoded at ``short_side`` so nothing larger than
needed is ever held.

Randomness comes from a generator seeded by ``(seed, epoch, index)`` only, so a clip is the same
whatever the number of DataLoader workers or the order they run in; call ``set_epoch`` once per epoch
to get new clips (with ``persistent_workers=True`` the workers keep the epoch they were started with).

A missing or undecodable file never stops an epoch: ``__getitem__`` returns
``{"skipped": path, "reason": ...}`` and logs a warning, and :func:`collate_clips` drops such items and
reports them under ``"skipped"``.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from dtcm import video
from dtcm.data.augment import build_augment
from dtcm.data.rawframes import count_rawframes, read_rawframes

__all__ = [
    "ClipDataset",
    "Sample",
    "collate_clips",
    "infer_class_names",
    "list_path",
    "read_class_index",
    "resolve_root",
    "to_zero_based",
]

logger = logging.getLogger(__name__)

# What a bad file raises: dtcm.video's VideoError is a ValueError; av and decord raise OSError /
# RuntimeError subclasses; cv2 raises cv2.error; a short read can raise IndexError or EOFError.
SKIPPABLE = (ValueError, OSError, RuntimeError, EOFError, IndexError, cv2.error)


@dataclass(frozen=True)
class Sample:
    """One labelled clip: a video file, or a folder of ``img_%05d.jpg`` frames when ``num_frames`` is set."""

    path: str  # absolute or as given; a video file or a rawframe folder
    label: int  # 0-based class index
    num_frames: int | None = None  # rawframe folders only: how many frames it holds

    @property
    def rawframes(self) -> bool:
        return self.num_frames is not None


class ClipDataset(torch.utils.data.Dataset):
    """Labelled clips in (3, T, H, W) float32 on [0, 1], the shape every model here takes.

    Args:
        samples: ``Sample`` objects or ``(path, label)`` pairs with 0-based labels.
        class_names: one name per class, in label order.
        train: random start + random crop (True) or centred window + centre crop (False); fixed for
            the dataset's life (build a second dataset for the other mode).
        clip_len: T, consecutive frames per clip.
        crop: output height = width.
        short_side: frames are decoded so their short side is this, then cropped.
        seed: base seed; clips depend only on ``(seed, epoch, index)``.
        cache: keep decoded frames in memory (train: the whole video at ``short_side``, so starts still
            vary; test: the clip). Per worker process; use ``persistent_workers=True`` with workers.
        cache_max_frames: videos longer than this are never cached whole (they are decoded per clip).
        augment: training augmentation, a name of ``dtcm.data.augment.AUGMENTS`` (``"none"``: random start
            and crop only; ``"strong"``: speed, jitter, scale-and-crop, flip, colour, gamma, contrast, blur).

    Example:
        >>> ds = ClipDataset([("a.mp4", 0), ("b.mp4", 1)], ("Drink", "Jump"), clip_len=16)
        >>> loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=collate_clips)
    """

    def __init__(
        self,
        samples: Iterable[Sample | tuple],
        class_names: Sequence[str],
        *,
        train: bool = False,
        clip_len: int = 16,
        crop: int = 112,
        short_side: int = 128,
        seed: int = 0,
        cache: bool = False,
        cache_max_frames: int = video.LIMITS.max_frames,
        augment: str = "none",
    ):
        self.samples = [s if isinstance(s, Sample) else Sample(str(s[0]), int(s[1])) for s in samples]
        self.class_names = tuple(str(n) for n in class_names)
        for name in self.class_names:
            _check_class_name(name)
        if clip_len < 1:
            raise ValueError(f"clip_len must be >= 1, got {clip_len}")
        if crop < 1 or short_side < crop:
            raise ValueError(f"need 1 <= crop <= short_side, got crop={crop}, short_side={short_side}")
        for s in self.samples:
            if not 0 <= s.label < len(self.class_names):
                raise ValueError(
                    f"label {s.label} of {s.path} is outside 0..{len(self.class_names) - 1} "
                    f"({len(self.class_names)} class names)"
                )
        self.train = bool(train)
        self.clip_len = int(clip_len)
        self.crop = int(crop)
        self.short_side = int(short_side)
        self.seed = int(seed)
        self.epoch = 0
        self.cache = bool(cache)
        self.cache_max_frames = int(cache_max_frames)
        self._frames: dict[int, np.ndarray] = {}  # index -> cached uint8 (N, H, W, 3)
        self._lengths: dict[int, int] = {}  # index -> frame count, so each video is probed once
        self._warned: set[str] = set()
        self._transform = None
        self.augment = str(augment)
        self._augment = build_augment(self.augment) if self.train else None  # test clips are never augmented

    # ---------------------------------------------------------------------------------------- info
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        mode = "train" if self.train else "test"
        return (
            f"{type(self).__name__}({len(self)} clips, {self.num_classes} classes, {mode}, "
            f"T={self.clip_len}, crop={self.crop}, short_side={self.short_side})"
        )

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random starts and crops ``__getitem__`` draws."""
        self.epoch = int(epoch)

    def generator(self, index: int) -> torch.Generator:
        """The generator for one item: a function of ``(seed, epoch, index)`` only."""
        state = np.random.SeedSequence([self.seed, self.epoch, int(index)]).generate_state(1, np.uint64)
        return torch.Generator().manual_seed(int(state[0]) & ((1 << 63) - 1))

    # ------------------------------------------------------------------------------------ loading
    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        if not os.path.exists(sample.path):
            return self._skip(sample.path, "missing file")
        try:
            rng = self.generator(index)
            frames = self.load_frames(index, rng)  # (T, h, w, 3) uint8, short side = short_side
            clip = self.transform(frames, rng)  # (3, T, crop, crop) float32
        except SKIPPABLE as e:  # a bad file must never stop an epoch (bugs such as TypeError still raise)
            return self._skip(sample.path, f"{type(e).__name__}: {e}")
        return {"video": clip, "label": sample.label, "path": sample.path}

    def load_frames(self, index: int, rng: torch.Generator | None = None) -> np.ndarray:
        """The uint8 clip (clip_len, H, W, 3) for item ``index`` before cropping; may raise.

        Args:
            index: item index.
            rng: draws the start in train mode (default: this item's generator).
        """
        sample = self.samples[index]
        if rng is None:
            rng = self.generator(index)
        if index in self._frames:
            frames = self._frames[index]
            return frames[self._window(len(frames), rng)]
        if sample.rawframes:
            n = sample.num_frames or count_rawframes(sample.path)
            if self.cache and n <= self.cache_max_frames:
                self._frames[index] = read_rawframes(sample.path, np.arange(n), self.short_side)
                return self._frames[index][self._window(n, rng)]
            return read_rawframes(sample.path, self._window(n, rng), self.short_side)

        if not self.train:
            frames = video.read_clip(sample.path, self.clip_len, sampling="dense", size=self.short_side)
            if self.cache:
                self._frames[index] = frames  # exactly the test clip: the window over it is the identity
            return frames
        n = self._num_frames(index)
        if self.cache and n <= self.cache_max_frames:
            frames = video.read_frames(sample.path, list(range(n)), size=self.short_side)
            self._frames[index] = frames
            return frames[self._window(len(frames), rng)]
        if self._augment is not None:  # a speed other than 1: frames are not consecutive
            return video.read_frames(sample.path, self._window(n, rng).tolist(), size=self.short_side)
        start = int(self._window(n, rng)[0])
        return video.read_clip(sample.path, self.clip_len, sampling="dense", start=start, size=self.short_side)

    def transform(self, frames: np.ndarray, rng: torch.Generator) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> float32 (3, T, crop, crop) on [0, 1] through ``dtcm.video.ClipTransform``."""
        if self._augment is not None:
            return self._augment(frames, self.crop, rng)
        if self._transform is None:
            self._transform = video.ClipTransform(short_side=self.short_side, crop=self.crop, train=self.train)
        return self._transform(frames, generator=rng)

    def _num_frames(self, index: int) -> int:
        if index not in self._lengths:
            self._lengths[index] = video.probe(self.samples[index].path).frames
        return self._lengths[index]

    def _window(self, n: int, rng: torch.Generator) -> np.ndarray:
        """Indices of ``clip_len`` consecutive frames out of ``n``, looping when ``n < clip_len``."""
        if self._augment is not None:
            return self._augment.indices(n, self.clip_len, rng)
        last = max(n - self.clip_len, 0)
        start = int(torch.randint(0, last + 1, (1,), generator=rng)) if self.train else last // 2
        return video.clip_indices(n, self.clip_len, "dense", start)

    def _skip(self, path: str, reason: str) -> dict:
        if path not in self._warned:
            self._warned.add(path)
            logger.warning("skipping %s: %s", path, reason)
        return {"skipped": path, "reason": reason}


def collate_clips(batch: Sequence[dict]) -> dict:
    """Stack the loaded items of a batch and list the skipped ones.

    Args:
        batch: items from ``ClipDataset.__getitem__``.

    Returns:
        ``{"video": (B, 3, T, H, W) float32, "label": (B,) int64, "path": [B str], "skipped": [str],
        "reasons": [str]}``; B counts the loaded items only and is 0 (``video`` of shape (0, 3, 0, 0, 0))
        when every item was skipped, which callers skip.
    """
    good = [b for b in batch if "skipped" not in b]
    skipped = [b for b in batch if "skipped" in b]
    if good:
        clips = torch.stack([b["video"] for b in good])  # (B, 3, T, H, W)
    else:
        clips = torch.zeros(0, 3, 0, 0, 0)
    return {
        "video": clips,
        "label": torch.tensor([int(b["label"]) for b in good], dtype=torch.long),
        "path": [b["path"] for b in good],
        "skipped": [b["skipped"] for b in skipped],
        "reasons": [b.get("reason", "") for b in skipped],
    }


# ---------------------------------------------------------------------------- list-file helpers
def list_path(text: str) -> str:
    """A path field of a split list, trimmed, unquoted and with forward slashes."""
    return text.strip().strip('"').replace("\\", "/")


def read_class_index(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names from a ``classInd.txt``: lines ``index<TAB>name`` or ``index name``, 0- or 1-based.

    Names are returned in index order; the indices must be consecutive.
    """
    entries = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split("\t") if "\t" in line else line.strip().split(None, 1)
        if len(parts) != 2 or not parts[0].strip().lstrip("-").isdigit():
            raise ValueError(f"{path}:{n}: expected 'index<TAB>name' or 'index name', got {line!r}")
        entries.append((int(parts[0]), parts[1].strip()))
    if not entries:
        raise ValueError(f"{path} lists no classes")
    entries.sort()
    first = entries[0][0]
    if [i for i, _ in entries] != list(range(first, first + len(entries))):
        raise ValueError(f"{path}: class indices must be consecutive, got {[i for i, _ in entries]}")
    return tuple(name for _, name in entries)


def to_zero_based(labels: Sequence[int], num_classes: int, label_base: int | None, source: str) -> list[int]:
    """Shift list labels to 0-based.

    ``label_base`` None detects it: a list is 1-based when it has no label 0 and has the label
    ``num_classes`` (impossible 0-based), otherwise 0-based (ARID's own lists are 0-based).
    """
    labels = [int(v) for v in labels]
    if label_base is None:
        label_base = 1 if labels and 0 not in labels and num_classes in labels else 0
    if label_base not in (0, 1):
        raise ValueError(f"label_base must be 0, 1 or None (detect), got {label_base!r}")
    out = [v - label_base for v in labels]
    bad = sorted({v for v in out if not 0 <= v < num_classes})
    if bad:
        raise ValueError(
            f"{source}: labels {[v + label_base for v in bad][:5]} fall outside {label_base}.."
            f"{num_classes - 1 + label_base} ({num_classes} classes, {label_base}-based)"
        )
    return out


def infer_class_names(paths: Sequence[str], labels: Sequence[int], num_classes: int) -> tuple[str, ...]:
    """Names from the folder each class's clips sit in, when every class has exactly one such folder.

    Falls back to ``class_0, class_1, ...`` when folders and labels do not match one to one.
    """
    folders: dict[int, set[str]] = {}
    for path, label in zip(paths, labels, strict=True):
        folders.setdefault(label, set()).add(Path(path.replace("\\", "/")).parent.name)
    names = [f"class_{i}" for i in range(num_classes)]
    for label, found in folders.items():
        if len(found) != 1 or not next(iter(found)):
            return tuple(f"class_{i}" for i in range(num_classes))
        names[label] = next(iter(found))
    if len(set(names)) != num_classes:
        return tuple(f"class_{i}" for i in range(num_classes))
    return tuple(names)


def resolve_root(
    rel_paths: Sequence[str | tuple[str, ...]],
    list_file: Path,
    root: str | os.PathLike | None,
    within: str | os.PathLike | None = None,
) -> Path:
    """The folder the list's relative paths start from: ``root``, or the one folder that holds them.

    ``root`` None: the nearest folder holding any of the first listed files, nearest first: the list's
    own folder, its sub-folders, the folder above, its sub-folders, the one above that, its sub-folders
    (ARID: ``list_cvt/`` beside ``clips_v1.5/``). Two folders equally near that both hold listed files
    are never chosen between (pass ``root=``), and a file missing there is never looked for elsewhere:
    it is named in a warning and skipped when loaded. An entry may be a tuple of alternative relative
    paths (any one existing counts).

    ``within`` (e.g. an uploaded dataset's folder): every entry must lie inside it; an absolute entry or
    one that leaves it raises ``ValueError`` before any listed file is looked at.
    """
    entries = [(p,) if isinstance(p, str) else tuple(p) for p in rel_paths]
    inside = Path(within).resolve() if within is not None else None
    if inside is not None:
        _check_within(entries, list_file, Path(root) if root is not None else list_file.parent, inside)
    base = Path(root) if root is not None else _nearest_root(entries, list_file, inside)
    if inside is not None:
        _check_within(entries, list_file, base, inside)
    missing = [alts[0] for alts in entries if not any(os.path.exists(base / p) for p in alts)]
    if missing:
        logger.warning(
            "%d of the %d clips listed in %s are missing under %s (e.g. %s); they will be skipped",
            len(missing),
            len(entries),
            list_file,
            base,
            ", ".join(missing[:3]),
        )
    return base


def _inside(path: Path, inside: Path | None) -> bool:
    return inside is None or path.resolve().is_relative_to(inside)


def _check_within(entries: list[tuple[str, ...]], list_file: Path, base: Path, inside: Path) -> None:
    """Raise unless ``base`` and every entry (relative, resolved from ``base``) lie inside ``inside``."""
    if not _inside(base, inside):
        raise ValueError(f"the dataset root {base} is outside {inside}, the folder this dataset must stay in")
    outside = [alts[0] for alts in entries if os.path.isabs(alts[0]) or not _inside(base / alts[0], inside)]
    if outside:
        raise ValueError(
            f"{list_file} names {len(outside)} clips outside {inside} (e.g. {', '.join(outside[:3])}); "
            "a dataset's lists may only name files inside its own folder, by relative paths"
        )


def _nearest_root(entries: list[tuple[str, ...]], list_file: Path, inside: Path | None) -> Path:
    probe = [alts for alts in entries[:64] if not os.path.isabs(alts[0])]
    if not probe:
        return list_file.parent
    seen: set[Path] = set()
    for base in (list_file.parent, list_file.parent.parent, list_file.parent.parent.parent):
        for level in ([base], _sub_folders(base)):
            level = [d for d in level if d not in seen and _inside(d, inside)]
            seen.update(level)
            holding = [d for d in level if any(_holds(d, alts, inside) for alts in probe)]
            if len(holding) == 1:
                return holding[0]
            if holding:
                raise FileNotFoundError(
                    f"the clips listed in {list_file} are in several folders ({', '.join(map(str, holding))}); "
                    "pass root= the folder they are relative to"
                )
    raise FileNotFoundError(
        f"none of the first {len(probe)} paths in {list_file} (e.g. {probe[0][0]!r}) exist beside or above "
        "the list; pass root= the folder they are relative to"
    )


def _holds(folder: Path, alternatives: tuple[str, ...], inside: Path | None) -> bool:
    return any(_inside(folder / p, inside) and os.path.exists(folder / p) for p in alternatives)


def _sub_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _check_class_name(name: str) -> None:
    """A class name is shown to people and written into config.json: printable, on one line, no direction marks."""
    bad = [c for c in name if not c.isprintable() or unicodedata.category(c) == "Cf"]  # Cf: bidi, zero-width
    if bad or not name.strip():
        codes = ", ".join(dict.fromkeys(f"U+{ord(c):04X}" for c in bad)) or "nothing but spaces"
        raise ValueError(
            f"the class name {name[:60]!r} cannot be shown ({codes}); name each class with printable characters "
            "on one line, without direction marks"
        )

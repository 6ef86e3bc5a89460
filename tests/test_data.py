"""dtcm.data: every list format loads with the right labels and class names, sampling is reproducible,
bad files are skipped and counted, and a DataLoader yields (B, 3, T, H, W)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from dtcm.config import ARID_CLASSES
from dtcm.data import (
    ARIDDataset,
    ClipDataset,
    Dark48Dataset,
    FolderDataset,
    build_dataset,
    collate_clips,
    detect_list_format,
    find_split_list,
    read_class_index,
)
from dtcm.data.base import to_zero_based

CLASSES = ARID_CLASSES[:3]  # Drink, Jump, Pick -> red, green, blue clips
T, H, W = 24, 48, 64  # frames per test video and their size
SMALL = dict(clip_len=8, crop=24, short_side=32)  # toy sampling sizes for every dataset below


def _clip(label: int, num_frames: int = T) -> np.ndarray:
    """A (T, H, W, 3) uint8 clip: the class's channel bright, plus a texture that moves with t."""
    t, y, x = np.meshgrid(np.arange(num_frames), np.arange(H), np.arange(W), indexing="ij")
    texture = ((x * 4 + y * 3 + t * 8) % 64).astype(np.uint8)  # (T, H, W)
    frames = np.repeat(texture[..., None], 3, axis=-1)  # (T, H, W, 3)
    frames[..., label] += 160
    return frames


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """root/videos/<Class>/<Class>_<i>.mp4 (2 per class), root/frames/<Class>_0/img_%05d.jpg, lists."""
    import cv2

    from dtcm.video import write_video

    root = tmp_path_factory.mktemp("dark")
    rel = []
    for label, name in enumerate(CLASSES):
        for i in range(2):
            write_video(root / "videos" / name / f"{name}_{i}.mp4", _clip(label), fps=12)
            rel.append((f"{name}/{name}_{i}.mp4", label))
        frames_dir = root / "frames" / f"{name}_0"
        frames_dir.mkdir(parents=True)
        for t, frame in enumerate(_clip(label, 12), 1):
            cv2.imwrite(str(frames_dir / f"img_{t:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    arid = root / "lists"  # ARID's own format, 0-based, no classInd.txt: ARID's 11 names
    arid.mkdir()
    for half in ("train", "test"):
        lines = [f"{i}\t{y}\t{p}" for i, (p, y) in enumerate(rel)]
        (arid / f"split1_{half}.txt").write_text("\n".join(lines) + "\n")
    ind = root / "lists_ind"  # 1-based list with a 1-based classInd.txt ("index name")
    ind.mkdir()
    (ind / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(CLASSES)))
    (ind / "split1_train.txt").write_text("".join(f"{i}\t{y + 1}\t{p}\n" for i, (p, y) in enumerate(rel)))
    ug2 = root / "ug2"  # UG2 CSV with bare file names, found under videos/<Class>/
    ug2.mkdir()
    rows = [f"{i},{p.split('/')[1]},{y}" for i, (p, y) in enumerate(rel)]
    (ug2 / "train.csv").write_text("VideoID,Video,ClassID\n" + "\n".join(rows) + "\n")
    dark = root / "dark48"  # Dark-48: classInd with tabs, 'path label' and 'dir n label' lists
    dark.mkdir()
    (dark / "classInd.txt").write_text("".join(f"{i}\t{n}\n" for i, n in enumerate(CLASSES)))
    (dark / "train_videos.txt").write_text("".join(f"videos/{p} {y}\n" for p, y in rel))
    (dark / "train_rawframes.txt").write_text("".join(f"frames/{n}_0 12 {y}\n" for y, n in enumerate(CLASSES)))
    return root


def _colour(item: dict) -> int:
    return int(item["video"].mean(dim=(1, 2, 3)).argmax())  # brightest channel = class


def test_arid_list(data):
    ds = ARIDDataset(None, data / "lists" / "split1_train.txt", **SMALL)
    assert ds.class_names == ARID_CLASSES and ds.labels == [0, 0, 1, 1, 2, 2]
    assert ds.root == data / "videos"
    item = ds[2]
    assert item["video"].shape == (3, 8, 24, 24) and item["video"].dtype == torch.float32
    assert float(item["video"].min()) >= 0 and float(item["video"].max()) <= 1
    assert item["label"] == 1 and _colour(item) == 1 and item["path"].endswith("Jump_0.mp4")


def test_arid_one_based_list_with_class_index(data):
    ds = ARIDDataset(data / "videos", data / "lists_ind" / "split1_train.txt", **SMALL)
    assert ds.class_names == CLASSES and ds.labels == [0, 0, 1, 1, 2, 2]
    assert _colour(ds[5]) == 2


def test_ug2_csv(data):
    ds = build_dataset(data / "ug2" / "train.csv", **SMALL)
    assert isinstance(ds, ARIDDataset) and ds.labels == [0, 0, 1, 1, 2, 2]
    assert ds.samples[3].path.endswith("videos/Jump/Jump_1.mp4")
    assert _colour(ds[3]) == 1


def test_dark48_video_and_rawframe_lists(data):
    ds = Dark48Dataset(data, data / "dark48" / "train_videos.txt", **SMALL)
    assert ds.class_names == CLASSES and ds.labels == [0, 0, 1, 1, 2, 2]
    assert _colour(ds[4]) == 2
    raw = build_dataset(data / "dark48" / "train_rawframes.txt", train=True, **SMALL)
    assert isinstance(raw, Dark48Dataset) and raw.class_names == CLASSES
    assert [s.num_frames for s in raw.samples] == [12, 12, 12]
    for i in range(3):  # RGB order survives cv2's BGR
        item = raw[i]
        assert item["video"].shape == (3, 8, 24, 24) and item["label"] == i and _colour(item) == i


def test_folder_and_build_dataset_dispatch(data):
    ds = FolderDataset(data / "videos", **SMALL)
    assert ds.class_names == CLASSES and ds.labels == [0, 0, 1, 1, 2, 2]
    assert type(build_dataset(data / "videos", **SMALL)) is FolderDataset
    picked = build_dataset(data / "lists", train=False, **SMALL)  # a folder of split lists
    assert isinstance(picked, ARIDDataset) and picked.list_file.name == "split1_test.txt"
    assert find_split_list(data / "lists", train=True).name == "split1_train.txt"
    with pytest.raises(FileNotFoundError, match="split 2"):
        find_split_list(data / "lists", train=True, split=2)
    assert detect_list_format(data / "lists" / "split1_train.txt") == "arid"
    assert detect_list_format(data / "dark48" / "train_videos.txt") == "dark48"
    renamed = FolderDataset(data / "videos", class_names=("Jump", "Drink"), **SMALL)  # Pick left out
    assert renamed.labels == [1, 1, 0, 0]


def test_train_sampling_varies_with_seed_and_epoch_but_is_reproducible(data):
    lst = data / "lists" / "split1_train.txt"
    a = ARIDDataset(None, lst, train=True, seed=0, **SMALL)
    b = ARIDDataset(None, lst, train=True, seed=0, **SMALL)
    c = ARIDDataset(None, lst, train=True, seed=1, **SMALL)
    later = b[1]["video"]  # access order must not matter
    first = a[0]["video"]
    assert torch.equal(first, b[0]["video"]) and torch.equal(a[1]["video"], later)
    assert not torch.equal(first, c[0]["video"]) or not torch.equal(a[1]["video"], c[1]["video"])
    a.set_epoch(1)
    assert not torch.equal(first, a[0]["video"]) or not torch.equal(later, a[1]["video"])


def test_test_mode_is_deterministic_and_cache_agrees(data):
    lst = data / "lists" / "split1_test.txt"
    a = ARIDDataset(None, lst, seed=0, **SMALL)
    b = ARIDDataset(None, lst, seed=7, cache=True, **SMALL)
    b.set_epoch(3)
    for _ in range(2):  # second pass reads b's cache
        assert torch.equal(a[0]["video"], b[0]["video"])
    train = ARIDDataset(None, lst, train=True, **SMALL)
    cached = ARIDDataset(None, lst, train=True, cache=True, **SMALL)
    for epoch in range(2):
        train.set_epoch(epoch)
        cached.set_epoch(epoch)
        assert torch.equal(train[3]["video"], cached[3]["video"])


def test_strong_augment_changes_clips_keeps_shapes_and_is_reproducible(data):
    lst = data / "lists" / "split1_train.txt"
    plain = ARIDDataset(None, lst, train=True, seed=0, **SMALL)
    a = ARIDDataset(None, lst, train=True, seed=0, augment="strong", **SMALL)
    b = ARIDDataset(None, lst, train=True, seed=0, augment="strong", cache=True, **SMALL)
    for i in range(len(a)):
        x = a[i]["video"]
        assert x.shape == plain[i]["video"].shape == (3, 8, 24, 24) and x.dtype == torch.float32
        assert float(x.min()) >= 0 and float(x.max()) <= 1
        assert not torch.equal(x, plain[i]["video"])
        assert torch.equal(x, b[i]["video"]) and torch.equal(x, b[i]["video"])  # cached or not, twice
    a.set_epoch(1)
    assert not torch.equal(a[0]["video"], b[0]["video"])
    test = ARIDDataset(None, lst, augment="strong", **SMALL)  # test clips are never augmented
    assert torch.equal(test[0]["video"], ARIDDataset(None, lst, **SMALL)[0]["video"])
    with pytest.raises(ValueError, match="augment must be one of none, strong"):
        ARIDDataset(None, lst, train=True, augment="heavy", **SMALL)


def test_strong_augment_frame_indices_move_forward_within_the_video():
    from dtcm.data.augment import StrongAugment

    aug = StrongAugment()
    spans = set()
    for seed in range(20):
        idx = aug.indices(40, 16, torch.Generator().manual_seed(seed))
        assert idx.shape == (16,) and idx.dtype == np.int64
        assert (np.diff(idx) >= 0).all() and idx.min() >= 0 and idx.max() < 40
        spans.add(int(idx[-1] - idx[0]))
    assert min(spans) < 15 < max(spans)  # slowed down and sped up
    short = aug.indices(5, 16, torch.Generator().manual_seed(0))  # shorter than the clip: loops
    assert short.shape == (16,) and short.max() < 5


def test_missing_and_corrupt_files_are_skipped_and_counted(data, tmp_path, caplog):
    (tmp_path / "Drink").mkdir()
    (tmp_path / "Drink" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    good = data / "videos" / "Jump" / "Jump_0.mp4"
    lines = [f"0\t1\t{good}", "1\t0\tDrink/missing.mp4", "2\t0\tDrink/broken.mp4", f"3\t1\t{good}"]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    ds = ARIDDataset(tmp_path, tmp_path / "list.txt", **SMALL)
    with caplog.at_level(logging.WARNING, logger="dtcm.data"):
        items = [ds[i] for i in range(len(ds))]
    assert items[1] == {"skipped": str(tmp_path / "Drink" / "missing.mp4"), "reason": "missing file"}
    assert "skipped" in items[2] and items[2]["reason"]
    assert "broken.mp4" in caplog.text and "missing.mp4" in caplog.text
    batch = collate_clips(items)
    assert batch["video"].shape == (2, 3, 8, 24, 24) and batch["label"].tolist() == [1, 1]
    assert len(batch["skipped"]) == 2 and batch["path"] == [str(good)] * 2
    empty = collate_clips([items[1], items[2]])
    assert empty["video"].shape[0] == 0 and empty["label"].shape == (0,) and len(empty["skipped"]) == 2


def test_dataloader_yields_batches(data):
    ds = build_dataset(data / "lists", train=True, **SMALL)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, num_workers=0, collate_fn=collate_clips)
    shapes = [tuple(b["video"].shape) for b in loader]
    assert shapes == [(4, 3, 8, 24, 24), (2, 3, 8, 24, 24)]
    assert next(iter(loader))["label"].dtype == torch.long


def test_list_parsing_errors_and_label_bases(tmp_path):
    (tmp_path / "ind.txt").write_text("0\tDrink\n1\tJump\n")
    assert read_class_index(tmp_path / "ind.txt") == ("Drink", "Jump")
    (tmp_path / "gap.txt").write_text("1 Drink\n3 Jump\n")
    with pytest.raises(ValueError, match="consecutive"):
        read_class_index(tmp_path / "gap.txt")
    assert to_zero_based([1, 2, 3], 3, None, "x") == [0, 1, 2]  # has 3 = num_classes and no 0
    assert to_zero_based([1, 2], 3, None, "x") == [1, 2]  # ARID default: 0-based
    with pytest.raises(ValueError, match="outside"):
        to_zero_based([0, 5], 3, None, "x")
    with pytest.raises(ValueError, match="outside"):
        ClipDataset([("a.mp4", 3)], ("a", "b"))
    (tmp_path / "bad.txt").write_text("just-a-path\n")
    with pytest.raises(ValueError, match="path label"):
        Dark48Dataset(tmp_path, tmp_path / "bad.txt")
    (tmp_path / "gone.txt").write_text("0\t0\tDrink/none.mp4\n")
    with pytest.raises(FileNotFoundError, match="root="):
        ARIDDataset(None, tmp_path / "gone.txt")

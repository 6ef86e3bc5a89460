"""Kinetics-400 I3D features of the real ARID clips, and classifiers measured by leave-one-raw-video-out.

The recognition issue's first measurements: frozen I3D features of ``../shared/data/arid_train`` (raw dark,
or behind an enhancer), a linear head trained on all raw videos but one and tested on the one left out, for
every raw video in turn (clips of one raw video share the person and the scene, so they are never split).

    python scripts/arid_i3d.py cache                       # decode every clip once (data/cache/arid/frames)
    python scripts/arid_i3d.py features --enhancer none --frames 32 --size 224 --crop full
    python scripts/arid_i3d.py cv data/cache/arid/feats/none_t32_s224_full.npz

Everything it writes lies under ``data/cache/arid`` (ignored by git: it is derived from research data).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ARID = SHARED / "data" / "arid_train"
CACHE = ROOT / "data" / "cache" / "arid"
CLASSES = ("Jump", "Run", "Sit", "Stand", "Turn", "Walk")
# two folds by raw video, one raw video of each class (two where a class has three) on each side
FOLD_B = ("Jump_11", "Run_1", "Sit_2", "Sit_4", "Stand_3", "Stand_9", "Turn_7", "Walk_14")
SPLIT = -3  # I3D's features end MaxPool3d_5a, Mixed_5b, Mixed_5c: everything before is frozen here


def manifest() -> list[dict]:
    """The clips of ``arid_train`` with their class and raw video, in the manifest's order."""
    with open(ARID / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [{"file": r["file"].split("/", 1)[1], "label": r["class"], "raw": r["raw_video"]} for r in rows]


def cache_frames() -> None:
    from dtcm import video

    out = CACHE / "frames"
    out.mkdir(parents=True, exist_ok=True)
    for n, row in enumerate(manifest()):
        dst = out / (Path(row["file"]).stem + ".npy")
        if dst.exists():
            continue
        frames, _ = video.read_video(ARID / row["file"], isolate=False)
        np.save(dst, frames)
        print(f"{n + 1} {row['file']} {frames.shape}", flush=True)


def sample(frames: np.ndarray, t: int) -> np.ndarray:
    """``t`` frames spread evenly over the whole clip (a short clip repeats frames)."""
    idx = np.linspace(0, len(frames) - 1, t).round().astype(int)
    return frames[idx]


def to_input(frames: np.ndarray, size: int, crop: str):
    """uint8 (T, H, W, 3) -> I3D input (1, 3, T, h, w) in [-1, 1]: short side ``size``, whole frame or centre square."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(frames).permute(3, 0, 1, 2).float().div_(255)  # (3, T, H, W)
    h, w = x.shape[-2:]
    s = size / min(h, w)
    nh, nw = round(h * s), round(w * s)
    x = F.interpolate(x.transpose(0, 1), size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    x = x.transpose(0, 1)  # (3, T, nh, nw)
    if crop == "centre":
        y0, x0 = (nh - size) // 2, (nw - size) // 2
        x = x[..., y0 : y0 + size, x0 : x0 + size]
    return (x * 2 - 1).unsqueeze(0)  # (1, 3, T, h, w)


def enhancer_fn(name: str):
    """uint8 frames -> uint8 frames through a shipped model's enhancer (``none``: unchanged)."""
    if name == "none":
        return lambda f: f
    if name == "bgsub":  # what moves, on grey: each frame minus the clip's median frame, brightened by the same gain
        def bgsub(f):
            x = f.astype(np.float32)
            return np.clip(128 + (x - np.median(x, axis=0)) * (100.0 / max(float(x.mean()), 1.0)), 0, 255).astype(np.uint8)

        return bgsub
    if name == "gain":  # a plain global gain to a mean grey level of 100: the simplest brightening
        return lambda f: np.clip(f.astype(np.float32) * (100.0 / max(float(f.mean()), 1.0)), 0, 255).astype(np.uint8)
    from dtcm.model import DTCM
    from dtcm.pipeline import enhance_frames

    model = DTCM.from_pretrained(ROOT / "weights" / name).eval()
    return lambda f: enhance_frames(model, f)


def features(args) -> Path:
    import torch

    from dtcm.model import DTCM

    torch.set_num_threads(args.threads)
    tag = f"{args.enhancer}_t{args.frames}_s{args.size}_{args.crop}" + ("_rev" if args.reverse else "")
    dst = CACHE / "feats" / f"{tag}.npz"
    part = CACHE / "feats" / f"{tag}.partial.npz"
    dst.parent.mkdir(parents=True, exist_ok=True)
    rows = manifest()
    done = dict(np.load(part, allow_pickle=False)) if part.exists() else {}
    net = DTCM.from_pretrained(args.weights).backbone.eval()
    enhance = enhancer_fn(args.enhancer)
    acts = CACHE / "acts" / tag  # Mixed_4f outputs, to fine-tune the top blocks without the bottom ones
    acts.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for n, row in enumerate(rows):
        key = Path(row["file"]).stem
        if key in done:
            continue
        frames = sample(np.load(CACHE / "frames" / f"{key}.npy"), args.frames)
        if args.reverse:  # played backwards: sitting down becomes standing up
            frames = np.ascontiguousarray(frames[::-1])
        frames = enhance(frames)
        with torch.inference_mode():
            x = to_input(frames, args.size, args.crop)
            low = net.features[: SPLIT](x)  # (1, 832, T/8, H/16, W/16): Mixed_4f's output
            np.save(acts / f"{key}.npy", low[0].half().numpy())
            fmap = net.features[SPLIT:](low)  # (1, 1024, T', H', W')
            feat = fmap.mean((2, 3, 4))  # (1, 1024)
            logits = net.forward_head(fmap)
        done[key] = np.concatenate([feat[0].numpy(), logits[0].numpy()]).astype(np.float32)
        if n % 10 == 9:
            np.savez(part, **done)
            print(f"{n + 1}/{len(rows)} {time.time() - t0:.0f}s", flush=True)
    keys = [Path(r["file"]).stem for r in rows]
    np.savez(
        dst,
        feats=np.stack([done[k][:1024] for k in keys]),
        kinetics=np.stack([done[k][1024:] for k in keys]),
        names=np.array(keys),
        labels=np.array([CLASSES.index(r["label"]) for r in rows]),
        raws=np.array([r["raw"] for r in rows]),
    )
    part.unlink(missing_ok=True)
    print(f"wrote {dst} in {time.time() - t0:.0f}s")
    return dst


def train_head(x, y, epochs=300, wd=1e-3, lr=0.05, seed=0):
    """A linear softmax head on standardised features, full-batch Adam."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(x)
    y = torch.as_tensor(y)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    w = (torch.randn(x.shape[1], len(CLASSES), generator=g) * 0.01).requires_grad_()
    b = torch.zeros(len(CLASSES), requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr, weight_decay=0)
    counts = torch.bincount(y, minlength=len(CLASSES)).float()
    weight = counts.sum() / (len(CLASSES) * counts.clamp(min=1))  # balanced classes
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(((x - mu) / sd) @ w + b, y, weight=weight) + wd * (w**2).sum()
        loss.backward()
        opt.step()
    return lambda z: (((torch.as_tensor(z) - mu) / sd) @ w + b).detach()


def held_out_sets(raws, folds: str):
    """Boolean test masks: one per raw video ("lovo") or the two halves of FOLD_B ("2")."""
    if folds == "lovo":
        return [raws == raw for raw in sorted(set(raws))]
    b = np.isin(raws, FOLD_B)
    return [b, ~b]


def report(names, y, pred, raws, path, verbose=True) -> dict:
    right = pred == y
    per_class = {c: f"{right[y == i].sum()}/{(y == i).sum()}" for i, c in enumerate(CLASSES)}
    per_raw = {r: f"{right[raws == r].sum()}/{(raws == r).sum()}" for r in sorted(set(raws))}
    majority = Counter(y.tolist()).most_common(1)[0][1] / len(y)
    out = {
        "features": str(path),
        "top1": round(float(right.mean()), 4),
        "mean_class_acc": round(float(np.mean([right[y == i].mean() for i in range(len(CLASSES))])), 4),
        "majority": round(majority, 4),
        "per_class": per_class,
        "per_raw_video": per_raw,
        "wrong": [f"{n}->{CLASSES[p]}" for n, p, r in zip(names, pred, right, strict=True) if not r],
    }
    if verbose:
        print(json.dumps(out, indent=1))
    return out


# what a clip played backwards shows: sitting down reversed is standing up; Run and Walk backwards are left out
REVERSED_AS = {"Jump": "Jump", "Sit": "Stand", "Stand": "Sit", "Turn": "Turn"}


def cross_validate(path, wd=1e-3, epochs=300, folds="lovo", reversed_feats=None, verbose=True) -> dict:
    """Each clip is predicted by a linear head that never saw its raw video (nor, with ``reversed_feats``,
    its raw video played backwards)."""
    d = np.load(path)
    x, y, raws, names = d["feats"], d["labels"], d["raws"], d["names"]
    if reversed_feats:
        r = np.load(reversed_feats)
        assert (r["names"] == names).all(), "the reversed features must list the same clips"
        keep = np.array([CLASSES[c] in REVERSED_AS for c in y])
        rev_y = np.array([CLASSES.index(REVERSED_AS.get(CLASSES[c], CLASSES[c])) for c in y])
    pred = np.zeros(len(y), dtype=int)
    for test in held_out_sets(raws, folds):
        xt, yt = x[~test], y[~test]
        if reversed_feats:
            extra = ~test & keep
            xt, yt = np.concatenate([xt, r["feats"][extra]]), np.concatenate([yt, rev_y[extra]])
        head = train_head(xt, yt, epochs=epochs, wd=wd)
        pred[test] = head(x[test]).argmax(1).numpy()
    return report(names, y, pred, raws, f"{path} ({folds})", verbose)


def finetune_top(args) -> dict:
    """Fine-tune Mixed_5b, Mixed_5c and a new 6-way head on cached Mixed_4f outputs, per held-out set."""
    import copy

    import torch
    import torch.nn as nn

    from dtcm.model import DTCM

    torch.set_num_threads(args.threads)
    d = np.load(args.feats)
    y, raws, names = d["labels"], d["raws"], d["names"]
    tag = Path(args.feats).stem
    acts = [torch.from_numpy(np.load(CACHE / "acts" / tag / f"{n}.npy")) for n in names]  # fp16 (832, t, h, w)
    base = DTCM.from_pretrained(args.weights).backbone
    pred = np.zeros(len(y), dtype=int)
    for fold, test in enumerate(held_out_sets(raws, args.folds)):
        torch.manual_seed(fold)
        top = nn.Sequential(copy.deepcopy(base.features[SPLIT:]))
        head = nn.Sequential(nn.Dropout(0.5), nn.Linear(base.num_features, len(CLASSES)))
        params = [{"params": top.parameters(), "lr": args.lr}, {"params": head.parameters(), "lr": args.lr * 10}]
        opt = torch.optim.AdamW(params, weight_decay=1e-4)
        train = np.flatnonzero(~test)
        counts = np.bincount(y[train], minlength=len(CLASSES))
        weight = torch.tensor(counts.sum() / (len(CLASSES) * np.maximum(counts, 1)), dtype=torch.float32)
        for epoch in range(args.epochs):
            top.train()
            head.train()
            for m in top.modules():  # BatchNorm statistics stay Kinetics' (batches of a few clips)
                if isinstance(m, nn.BatchNorm3d):
                    m.eval()
            order = np.random.default_rng(epoch + 100 * fold).permutation(train)
            total = 0.0
            for i in range(0, len(order), args.batch):
                idx = order[i : i + args.batch]
                x = torch.stack([acts[j].float() for j in idx])  # (b, 832, t, h, w)
                if np.random.default_rng(epoch * 7 + i).random() < 0.5:
                    x = x.flip(-1)  # mirrored clips
                logits = head(top(x).mean((2, 3, 4)))
                loss = nn.functional.cross_entropy(logits, torch.as_tensor(y[idx]), weight=weight)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            print(f"fold {fold} epoch {epoch + 1} loss {total / len(train):.3f}", flush=True)
        top.eval()
        head.eval()
        with torch.inference_mode():
            for j in np.flatnonzero(test):
                pred[j] = int(head(top(acts[j].float()[None]).mean((2, 3, 4))).argmax(1))
    return report(names, y, pred, raws, f"{args.feats} top blocks, {args.epochs} epochs, lr {args.lr} ({args.folds})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("cache")
    f = sub.add_parser("features")
    f.add_argument("--weights", default=str(CACHE.parent / "i3d-kinetics400"), help="folder made by dtcm import-i3d")
    f.add_argument("--enhancer", default="none", help="'none' or a shipped DTCM variant whose enhancer runs first")
    f.add_argument("--frames", type=int, default=32)
    f.add_argument("--size", type=int, default=224)
    f.add_argument("--crop", choices=("full", "centre"), default="full")
    f.add_argument("--threads", type=int, default=2)
    f.add_argument("--reverse", action="store_true", help="features of the clips played backwards")
    c = sub.add_parser("cv")
    c.add_argument("feats", nargs="+")
    c.add_argument("--wd", type=float, default=1e-3)
    c.add_argument("--folds", choices=("lovo", "2"), default="lovo")
    c.add_argument("--reversed", default=None, help="features of the same clips played backwards, to train on too")
    t = sub.add_parser("top")
    t.add_argument("feats")
    t.add_argument("--weights", default=str(CACHE.parent / "i3d-kinetics400"))
    t.add_argument("--folds", choices=("lovo", "2"), default="2")
    t.add_argument("--epochs", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if args.cmd == "cache":
        cache_frames()
    elif args.cmd == "features":
        features(args)
    elif args.cmd == "top":
        finetune_top(args)
    else:
        for path in args.feats:
            cross_validate(path, wd=args.wd, folds=args.folds, reversed_feats=args.reversed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

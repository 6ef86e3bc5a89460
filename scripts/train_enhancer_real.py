"""Train a zero-reference enhancer (LightDCE or Zero-DCE) on real photographs, clips made from them and footage.

Every step takes a batch of still crops: SICE's real multi-exposure shots and well-lit photos as they are, or
filmed by the low-light camera model at an exposure from x0.01 to x1. Every ``--clip-every`` steps it adds a
batch of clips: pans/zooms over a photo filmed at one exposure, or windows of real footage, enhanced with frame
sharing k. Loss (no labels): W_STC L_STC + L_Dark (SPEC A6) + ``--w-local-color`` times the local
colour-constancy term (dtcm.losses.local_color_loss), L_exp weighted ``--w-exp`` (1 in L_Dark) at level
``--exposure``, and ``--w-order`` times the light-order term (dtcm.losses.order_loss). 10 % of the photos are held out (dtcm.data.photos) and
scored every ``--val-every`` steps. Outputs are DTCM folders (``save_pretrained``) whose enhancer is the trained
one and whose classifier is copied from ``--template`` (unused by enhancer-only variants). A scene-form enhancer
(``--enhancer lightdce_scene``) may start (``--init``) from weights of its per-channel form: each iteration's
output map starts as the mean of its R, G and B maps. A run resumes from its last checkpoint with ``--init``
that checkpoint and ``--start-step`` its step (the schedule and the data stream go on from there).

    python scripts/train_enhancer_real.py --data ../shared/data/enhance_train --enhancer lightdce \\
        --template weights/lightdce-real --output-dir runs/lightdce-photos
    python scripts/train_enhancer_real.py --recipe weights/recipes/photos/lightdce.json   # the shipped run
    accelerate launch scripts/train_enhancer_real.py ...   # the same loop on GPUs
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from dtcm.data import photos
from dtcm.losses import exposure_loss, local_color_loss, order_loss, total_loss
from dtcm.model import DTCM


def parse_args(argv=None):
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--recipe", default=None)
    known, _ = pre.parse_known_args(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default=None, help="a JSON of these flags (underscored keys); flags given win")
    p.add_argument("--data", required=True, help="folder of training photos (enhance_train/)")
    p.add_argument("--footage", nargs="*", default=[], help="real videos for footage clips")
    p.add_argument("--enhancer", choices=["lightdce", "zerodce", "lightdce_scene", "zerodce_scene"], default="lightdce")
    p.add_argument("--template", required=True, help="a DTCM folder whose config and classifier are kept")
    p.add_argument("--init", default=None, help="a DTCM folder to start the enhancer from (default: fresh)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=8, help="still crops per step")
    p.add_argument("--clip-batch", type=int, default=2, help="clips per clip step")
    p.add_argument("--clip-every", type=int, default=2, help="a clip batch every N steps (0: none)")
    p.add_argument("--clip-len", type=int, default=4)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--long-side", type=int, default=256, help="photos are shrunk to this long side first")
    p.add_argument("--k", type=int, default=4, help="frame sharing on clips")
    p.add_argument("--filmed", type=float, default=0.5, help="share of still crops filmed by the camera model")
    p.add_argument("--w-stc", type=float, default=4.0)
    p.add_argument("--w-local-color", type=float, default=5.0, help="0 turns the local colour term off")
    p.add_argument("--w-exp", type=float, default=1.0, help="weight of L_exp (L_Dark has 1)")
    p.add_argument("--exposure", type=float, default=0.6, help="level E of the weighted L_exp (L_Dark's stays 0.6)")
    p.add_argument("--w-order", type=float, default=0.0, help="weight of the light-order term (0: off)")
    p.add_argument("--start-step", type=int, default=0, help="resume: the step --init was saved at")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--val-every", type=int, default=200)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    if known.recipe:
        recipe = {k: v for k, v in json.loads(Path(known.recipe).read_text()).items() if not k.startswith("_")}
        unknown = sorted(set(recipe) - {a.dest for a in p._actions})
        if unknown:
            p.error(f"{known.recipe} has unknown keys {unknown}")
        p.set_defaults(**recipe)
        for action in p._actions:  # a recipe may give the required flags
            if action.dest in recipe:
                action.required = False
    return p.parse_args(argv)


def footage_windows(paths, clip_len: int, count: int, rng, short_side: int = 160, train_share: float = 0.8):
    """``count`` windows of ``clip_len`` consecutive frames from the first 80 % of each video: uint8 list."""
    out = []
    for path in paths:
        cap = cv2.VideoCapture(str(path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        last = int(n * train_share) - clip_len
        for start in sorted(rng.integers(0, max(last, 1), count)):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(start))
            frames = []
            for _ in range(clip_len):
                ok, bgr = cap.read()
                if not ok:
                    break
                h, w = bgr.shape[:2]
                s = short_side / min(h, w)
                frames.append(cv2.resize(bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)[:, :, ::-1])
            if len(frames) == clip_len:
                out.append(np.ascontiguousarray(np.stack(frames)))
        cap.release()
    return out


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (3, T, H, W) in [0, 1]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float().div_(255)  # (3, T, H, W)


def still_batch(pool, args, rng) -> torch.Tensor:
    crops = []
    for _ in range(args.batch_size):
        crop = photos.photo_crop(pool[int(rng.integers(len(pool)))], args.crop, rng)[None]
        crops.append(to_tensor(photos.film(crop, rng) if rng.random() < args.filmed else crop))
    return torch.stack(crops)  # (B, 3, 1, S, S)


def clip_batch(pool, footage, args, rng) -> torch.Tensor:
    clips = []
    for _ in range(args.clip_batch):
        if footage and rng.random() < 0.4:
            clip = footage[int(rng.integers(len(footage)))]
            y, x = (int(rng.integers(0, d - args.crop + 1)) for d in clip.shape[1:3])
            clip = np.ascontiguousarray(clip[:, y : y + args.crop, x : x + args.crop])
        else:
            clip = photos.pan_zoom_clip(pool[int(rng.integers(len(pool)))], args.clip_len, args.crop, rng)
        clips.append(to_tensor(photos.film(clip, rng) if rng.random() < 0.8 else clip))
    return torch.stack(clips)  # (B, 3, T, S, S)


def objective(enhancer, x, k, args) -> dict:
    y, curves = enhancer(x, k)
    terms = total_loss(None, None, x, y, curves, alpha=1.0, w_stc=args.w_stc)
    terms["lcol"] = local_color_loss(y, x)
    terms["total"] = terms["total"] + args.w_local_color * terms["lcol"] + (args.w_exp - 1.0) * terms["exp"]
    if args.exposure != 0.6:  # the extra weight of L_exp goes to the new level
        terms["total"] = terms["total"] + (args.w_exp - 1.0) * (exposure_loss(y, args.exposure) - terms["exp"])
    if args.w_order:
        terms["order"] = order_loss(y, x)
        terms["total"] = terms["total"] + args.w_order * terms["order"]
    return terms


def validation_set(held, seed: int = 1234) -> list[torch.Tensor]:
    """Fixed held-out samples: each photo's centre 192x192 as it is and filmed at x0.02 and x0.1."""
    rng = np.random.default_rng(seed)
    out = []
    for img in held:
        h, w = img.shape[:2]
        s = min(h, w, 192)
        crop = np.ascontiguousarray(img[(h - s) // 2 : (h + s) // 2, (w - s) // 2 : (w + s) // 2])[None]
        out += [to_tensor(crop)[None], to_tensor(photos.film(crop, rng, 0.02))[None]]
        out.append(to_tensor(photos.film(crop, rng, 0.1))[None])
    return out


@torch.no_grad()
def validate(enhancer, samples) -> dict:
    enhancer.eval()
    loss, blown, dark_luma, n_dark, order = 0.0, 0.0, 0.0, 0, 0.0
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1, 1)
    for x in samples:
        y, curves = enhancer(x, 1)
        loss += total_loss(None, None, x, y, curves, alpha=1.0)["total"].item()
        blown += (y.amax(1) >= 250 / 255).float().mean().item()
        order += order_loss(y, x).item()
        if (x * luma).sum(1).mean() < 60 / 255:
            dark_luma += 255 * (y * luma).sum(1).mean().item()
            n_dark += 1
    enhancer.train()
    n = len(samples)
    return {
        "val_loss": loss / n,
        "val_blown_pct": 100 * blown / n,
        "val_dark_out_luma": dark_luma / max(n_dark, 1),
        "val_order_x1e4": 1e4 * order / n,
    }


def scene_from_colour(state: dict, scene_state: dict) -> dict:
    """A scene-form estimator's state from its per-channel form's: each output map starts as the mean of its
    iteration's R, G and B maps (the last conv's weight (3n, C, 3, 3) and bias (3n,) become (n, ...))."""
    out = {}
    for key, value in state.items():
        want = scene_state[key].shape
        if value.shape != want and value.shape[0] == 3 * want[0]:
            value = value.view(want[0], 3, *value.shape[1:]).mean(1)  # (n, ...)
        out[key] = value
    return out


def save(enhancer, template: DTCM, folder: Path, extra: dict) -> None:
    """Write a DTCM folder (config.json, model.safetensors) with this enhancer, atomically."""
    template.enhancer.load_state_dict(enhancer.state_dict())
    template.config = template.config.replace(extra={**template.config.extra, **extra})
    tmp = folder.with_name(folder.name + ".tmp")
    template.save_pretrained(tmp, config=template.config.to_dict())
    if folder.exists():
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    os.replace(tmp, folder)


def main(args) -> int:
    from accelerate import Accelerator

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    accelerator = Accelerator()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_args.json").write_text(json.dumps(vars(args), indent=1))

    template = DTCM.from_pretrained(args.template)
    if template.config.enhancer != args.enhancer:
        if template.config.enhancer + "_scene" != args.enhancer:
            raise ValueError(
                f"--template {args.template} has enhancer {template.config.enhancer!r}, not {args.enhancer!r}"
            )
        scene = DTCM(template.config.replace(enhancer=args.enhancer))  # the template's classifier, a new enhancer
        keep = {k: v for k, v in template.state_dict().items() if not k.startswith("enhancer.")}
        scene.load_state_dict(keep | {f"enhancer.{k}": v for k, v in scene.enhancer.state_dict().items()})
        template = scene
    enhancer = DTCM(template.config).enhancer
    if args.init:
        state = DTCM.from_pretrained(args.init).enhancer.state_dict()
        enhancer.load_state_dict(scene_from_colour(state, enhancer.state_dict()))
    train_paths, held_paths = photos.split_photos(photos.list_photos(args.data))
    pool = photos.load_photos(train_paths, args.long_side)
    held = photos.load_photos(held_paths[:: max(1, len(held_paths) // 40)], args.long_side)  # ~40 for speed
    footage = footage_windows(args.footage, args.clip_len, 24, rng)
    val = validation_set(held)
    print(f"{len(pool)} training photos, {len(held_paths)} held out, {len(footage)} footage windows", flush=True)

    optimizer = torch.optim.Adam(enhancer.parameters(), lr=args.lr, weight_decay=1e-4)

    def lr_at(step):  # linear warm-up, then cosine to 5 %
        if step < args.warmup:
            return (step + 1) / args.warmup
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - args.warmup) / max(1, args.steps - args.warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    for _ in range(args.start_step):  # resume: the schedule and the data stream where the run stopped
        scheduler.step()
        still_batch(pool, args, rng)
        if args.clip_every and (_ + 1) % args.clip_every == 0:
            clip_batch(pool, footage, args, rng)
    enhancer, optimizer = accelerator.prepare(enhancer, optimizer)
    extra = {"trained_with": "scripts/train_enhancer_real.py", "data": "enhance_train photos + clips + footage"}
    t0 = time.time()
    with open(out / "log.jsonl", "a") as log:
        for step in range(args.start_step + 1, args.steps + 1):
            batches = [(still_batch(pool, args, rng), 1)]
            if args.clip_every and step % args.clip_every == 0:
                batches.append((clip_batch(pool, footage, args, rng), args.k))
            optimizer.zero_grad(set_to_none=True)
            record = {"step": step}
            for x, k in batches:
                terms = objective(enhancer, x, k, args)
                accelerator.backward(terms["total"] / len(batches))
                prefix = "" if k == 1 else "clip_"
                record |= {
                    prefix + key: round(v.item(), 6)
                    for key, v in terms.items()
                    if key in ("total", "exp", "col", "lcol", "stc", "order")
                }
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(enhancer.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            record |= {"lr": scheduler.get_last_lr()[0], "time": round(time.time() - t0, 1)}
            if step % args.val_every == 0 or step == args.steps:
                record |= validate(accelerator.unwrap_model(enhancer), val)
            if accelerator.is_main_process:
                log.write(json.dumps(record) + "\n")
                log.flush()
                if step % args.checkpoint_every == 0 or step == args.steps:
                    name = "final" if step == args.steps else f"checkpoint-{step}"
                    save(accelerator.unwrap_model(enhancer), template, out / name, extra | {"steps": step})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(parse_args()))

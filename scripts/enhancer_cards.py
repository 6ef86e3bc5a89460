"""Write the model cards of the enhancers trained on real photographs from their measured figures.

    python scripts/enhancer_cards.py --results benchmarks/results/enhance_quality.json \
        --lightdce-step "600 steps" --zerodce-step "600 steps"

Reads ``benchmarks/results/enhance_quality.json`` (benchmarks/enhance_quality.py) and each folder's config,
and writes ``weights/lightdce-real/README.md`` and ``weights/zerodce-real/README.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"

HEAD = """---
library_name: dtcm
license: mit
tags:
- low-light
- image-enhancement
- video-enhancement
- zero-reference
- dtcm
- pytorch_model_hub_mixin
---

# {name}

{what} A zero-reference curve estimator (SPEC A2-A4) in the scene-keeping form of issue 19 (enhancer
`{enhancer}`): it predicts 8 light-enhancement curves (`x <- x + r x (1 - x)`) from a keyframe shrunk to a short
side of 64, keeps of each map its frame-wide mean plus 0.15 of its 4x4-grid deviation (smooth, so the order of
light is kept), lifts L = max(R, G, B) through them with highlights rolled off at slope 0.2 instead of clipped
and L read blurred below 24 grey levels, and carries the input's colour over from luma-weighted 4x4 means at half
resolution (`dtcm/curves.py`, `scene_maps` and `scene_curves`; the same function in training and in
`dtcm enhance`). No reference images and no labels. This folder is a DTCM model whose classifier
(3D-ShuffleNetV2 x0.5) is untrained and unused: the variant is an enhancer (`enhancer_only` in
`weights/index.json`). `dtcm enhance IN OUT` uses `lightdce-real` by default, for photos (jpg, png, bmp, webp)
and clips alike.

## Data

Real photographs, research-licensed, used for training only and never shipped (`../shared/data`):
SICE Part 1 (1,669 real multi-exposure shots of the same scenes, under- to over-exposed, 512x512; the set
Zero-DCE was trained on) and 299 well-lit photos (BSD100, Urban100, SunHays80, Set14, Set5). 10 % of the photos
are held out (whole blocks of SICE scene numbers, `dtcm.data.photos.split_photos`). Each step: 8 still
128x128 crops (photos shrunk to a long side of 256), half as they are and half filmed by the project's
synthetic low-light camera model (`dtcm.data.synthetic`: sRGB -> linear, exposure x0.01-x1 log-uniform, shot
and read noise, colour cast, 8 bit); every second step also 2 clips of 4 frames: a pan/zoom over a photo
filmed at one exposure, or a window of real footage (vtest.avi and 5 night-time videos, their first 80 %).

## Training

`scripts/train_enhancer_real.py`, recipe `weights/recipes/photos/{recipe}`; {steps}, started from the
per-channel weights of issue 9 ({init}, the previous version of this folder; each output map starts as the
mean of its R, G and B maps). Loss: W_STC L_STC + L_Dark (the paper's Eq. 4-5, W_STC = 4) + 5 x local colour
constancy (`dtcm.losses.local_color_loss`) + L_exp weighted x4 at level 0.45 (`--w-exp 4 --exposure 0.45`) +
1000 x the light-order term (`dtcm.losses.order_loss`: pairs of 16x16-grid regions whose order of max(R, G, B)
flips). Adam, lr 5e-4, batch 8, gradient clipping 1.0, one CPU thread.

## Real-data figures

Measured by `python benchmarks/enhance_quality.py --published ../shared/weights/zerodce-official/Epoch99.pth`
(`dtcm.quality`), long side <= 640, against the published Zero-DCE (the authors' `Epoch99.pth` converted in
memory, not shipped); the ARID frames and the issue-19 commands are in docs/RESULTS.md:

{table}

Definitions (`dtcm/quality_measures.py`): LOE = lightness order error on 50x50 (pairs whose order of
max(R, G, B) flips, mean count); chroma noise = mean |C - box5(C)| of BT.601 Cb and Cr; blown-out = % of
pixels whose brightest channel is >= 250; false colour = % of clearly coloured 32x32 input patches whose dominant
channel changes; cast = mean L1 shift of the patches' chromaticity, x100; change on lit = mean |luma change| on held-out photos with luma > 90 (enhance_test
has none).

## Limitations

- No ground truth: these are no-reference measures on 70 real low-light photos and 75 held-out lit ones.
- One curve for the whole frame, nearly: shadows next to a lamp are lifted as much as shadows elsewhere, so on
  the darkest frames some regions stay darker than a per-pixel curve would leave them; luma noise (grain) of
  the darkest photos is lifted with them (colour speckle is filtered, grain is not).
- Colour is filtered over about 4 pixels: thin coloured lines lose some colour, and the colour noise of the
  darkest video (ARID) comes out as soft pink and violet blotches on walls instead of speckle.
- Compression blocks of dark video are smoothed only below 24 grey levels: on dark floors they stay visible as
  mottled grey blocks (as with the published Zero-DCE).
- It is brighter than the published Zero-DCE (dark photos land at luma ~117 against ~70): lit walls can look
  washed out.
- The DTCM variants (`dtcm-shufflenetv2-wstc*`) still carry their own, per-channel enhancer.
- Lit inputs: the enhancer alone still brightens them; the pipeline (`dtcm.adaptive`) softens or skips it on lit
  clips, and the service says which.
"""


def _fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def table(results: dict, ours_key: str) -> str:
    t, lit, v = results["enhance_test"], results["held_out_lit"], results["vtest_dark"]
    rows = [
        "| | ours | Zero-DCE (published) | HE |",
        "|---|---|---|---|",
        f"| enhance_test: LOE | {_fmt(t[ours_key]['loe'])} | {_fmt(t['zero-dce (published)']['loe'])} | "
        f"{_fmt(t['he']['loe'])} |",
        f"| enhance_test: chroma noise | {_fmt(t[ours_key]['chroma_noise'], 2)} | "
        f"{_fmt(t['zero-dce (published)']['chroma_noise'], 2)} | {_fmt(t['he']['chroma_noise'], 2)} |",
        f"| enhance_test: output luma of inputs darker than 60 | {_fmt(t[ours_key]['dark_luma_out'])} | "
        f"{_fmt(t['zero-dce (published)']['dark_luma_out'])} | {_fmt(t['he']['dark_luma_out'])} |",
        f"| enhance_test: blown-out % | {_fmt(t[ours_key]['blown_pct'], 2)} | "
        f"{_fmt(t['zero-dce (published)']['blown_pct'], 2)} | {_fmt(t['he']['blown_pct'], 2)} |",
        f"| enhance_test: false colour % | {_fmt(t[ours_key]['false_colour'], 2)} | "
        f"{_fmt(t['zero-dce (published)']['false_colour'], 2)} | {_fmt(t['he']['false_colour'], 2)} |",
        f"| enhance_test: local cast x100 | {_fmt(t[ours_key]['cast'], 2)} | "
        f"{_fmt(t['zero-dce (published)']['cast'], 2)} | {_fmt(t['he']['cast'], 2)} |",
    ]
    if ours_key == "ours":
        rows += [
            f"| held-out lit photos: change (grey levels), raw / as the pipeline applies it | "
            f"{_fmt(lit['ours']['lit_change'])} / {_fmt(lit['ours (adaptive)']['lit_change'])} | "
            f"{_fmt(lit['zero-dce (published)']['lit_change'])} | - |",
            f"| darkened vtest.avi: L_STC (output luma) | {_fmt(v['ours']['stc'], 4)} ({_fmt(v['ours']['luma_out'])}) "
            f"| - | {_fmt(v['he']['stc'], 4)} ({_fmt(v['he']['luma_out'])}) |",
        ]
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="benchmarks/results/enhance_quality.json")
    p.add_argument("--lightdce-step", required=True, help="what was shipped, e.g. '500 + 900 steps'")
    p.add_argument("--zerodce-step", required=True)
    args = p.parse_args(argv)
    results = json.loads(Path(args.results).read_text())
    cards = {
        "lightdce-real": dict(
            what="LightDCE (the paper's lightweight enhancer with one map per iteration: 15,608 parameters), "
            "trained here on real photographs.",
            enhancer="lightdce_scene",
            recipe="lightdce_scene.json",
            init="`lightdce-real` at commit 9d1364d: recipes `photos/lightdce.json`, then `lightdce_stage2.json`",
            steps=args.lightdce_step,
            key="ours",
        ),
        "zerodce-real": dict(
            what="Zero-DCE's DCE-Net (one map per iteration: 70,184 parameters), retrained here on real "
            'photographs: the app\'s "Zero-DCE (trained here)" baseline.',
            enhancer="zerodce_scene",
            recipe="zerodce_scene.json",
            init="`zerodce-real` at commit 9d1364d: recipe `photos/zerodce.json`",
            steps=args.zerodce_step,
            key="zero-dce (trained here)",
        ),
    }
    for name, c in cards.items():
        text = HEAD.format(name=name, table=table(results, c.pop("key")), **c)
        (WEIGHTS / name / "README.md").write_text(text)
        print(f"wrote {WEIGHTS / name / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

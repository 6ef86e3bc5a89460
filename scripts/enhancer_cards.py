"""Write the model cards of the enhancers trained on real photographs from their measured figures.

    python scripts/enhancer_cards.py --results benchmarks/results/enhance_quality.json \
        --lightdce-step 900 --zerodce-step 1000

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

{what} A zero-reference curve estimator (SPEC A2-A4): it predicts 8 light-enhancement curves per pixel
(`x <- x + r x (1 - x)`), with no reference images and no labels. This folder is a DTCM model whose classifier
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

`scripts/train_enhancer_real.py`, recipe `weights/recipes/photos/{recipe}`; {steps}. Loss: W_STC L_STC + L_Dark
(the paper's Eq. 4-5, W_STC = 4) + 5 x local colour constancy (each 32x32 patch keeps its input
chromaticity, `dtcm.losses.local_color_loss`){extra}. Adam, batch 8, gradient clipping 1.0, one CPU thread.

## Real-data figures

Measured by `python benchmarks/enhance_quality.py` (`dtcm.quality`), long side <= 640, against the published
Zero-DCE (the authors' `Epoch99.pth` converted by `dtcm import-zerodce`, not shipped):

{table}

Definitions (`dtcm/quality.py`): blown-out = % of pixels whose brightest channel is >= 250; false colour =
% of clearly coloured 32x32 input patches whose dominant channel changes; cast = mean L1 shift of the
patches' chromaticity, x100; change on lit = mean |luma change| on held-out photos with luma > 90 (enhance_test
has none).

## Limitations

- No ground truth: these are no-reference measures on 70 real low-light photos and 75 held-out lit ones.
- On the darkest photos it lifts sensor noise and JPEG blocks into visible chroma noise and green/yellow
  blotches (docs/RESULTS.md, the contact sheet); the published Zero-DCE stays dark there and shows less of it.
- Not trained on synthetic action clips; the DTCM variants (`dtcm-shufflenetv2-wstc*`) still carry their own,
  older enhancer.
- Lit inputs: the enhancer alone still brightens them (the exposure target is luma ~150); the pipeline
  (`dtcm.adaptive`) softens or skips it on lit clips, and the service says which.
"""


def _fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def table(results: dict, ours_key: str) -> str:
    t, lit, v = results["enhance_test"], results["held_out_lit"], results["vtest_dark"]
    rows = [
        "| | ours | Zero-DCE (published) | HE |",
        "|---|---|---|---|",
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
            what="LightDCE (the paper's lightweight enhancer, 23,688 parameters), trained here on real photographs.",
            recipe="lightdce.json` (stage 1) then `weights/recipes/photos/lightdce_stage2.json",
            steps=args.lightdce_step,
            extra="; the second stage weights L_exp x4 (`--w-exp 4`, `--init` the first stage) to reach the "
            "target brightness on very dark photos",
            key="ours",
        ),
        "zerodce-real": dict(
            what="Zero-DCE's DCE-Net (79,416 parameters), retrained here on real photographs: the app's "
            '"Zero-DCE (trained here)" baseline.',
            recipe="zerodce.json",
            steps=args.zerodce_step,
            extra="",
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

"""Enhancement quality targets (issue 9) on real imagery, measured with dtcm.quality; writes JSON.

Targets, long side <= 640:
  1. enhance_test (70 real low-light photos): blown-out pixels and false colour each within 1 point of the
     published Zero-DCE or better;
  2. enhance_test inputs darker than luma 60 land at a mean output luma of 90-150;
  3. lit inputs (luma > 90; the held-out photos of enhance_train, enhance_test has none): mean change <= 10
     grey levels, as the pipeline applies the enhancer (dtcm.adaptive) and, for the record, raw;
  4. vtest.avi darkened by the camera model (exposure x0.05, 16 frames): L_STC at most half of HE's, with
     our output at luma >= 80.
Speed (LightDCE k = 4 vs Zero-DCE k = 1) is benchmarks/enhancer_speed.py.

Usage:
    python benchmarks/enhance_quality.py --data ../shared/data --model weights/lightdce-real \
        --published runs/zerodce-published [--sheet reports/enhance_quality.png]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dtcm import quality  # noqa: E402
from dtcm.quality_measures import LUMA  # noqa: E402

OUT = Path(__file__).parent / "results" / "enhance_quality.json"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--model", default="weights/lightdce-real")
    p.add_argument("--zerodce", default="weights/zerodce-real")
    p.add_argument("--published", default=os.environ.get("DTCM_ZERODCE_PUBLISHED"))
    p.add_argument("--sheet", default=None, help="contact sheet of enhance_test (keep it out of the project)")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    if not args.published:
        p.error("--published (a dtcm import-zerodce folder) or $DTCM_ZERODCE_PUBLISHED is needed")
    data = Path(args.data)
    ours, ours_adaptive = quality.learned(args.model), quality.learned(args.model, adaptive=True)
    results = {"model": args.model}

    photos = quality.load_inputs(quality.list_inputs(data / "enhance_test"))
    methods = {"ours": ours, "zero-dce (trained here)": quality.learned(args.zerodce)}
    methods |= {"zero-dce (published)": quality.learned(args.published), "he": quality.classical("he")}
    table, outputs = {}, {}
    for name, fn in methods.items():
        table[name], outputs[name] = quality.measure(photos, fn)
    results["enhance_test"] = table
    if args.sheet:
        quality.contact_sheet(photos, outputs, args.sheet)

    lit = [x for x in quality.load_inputs(quality.list_inputs(data / "enhance_train", "held-out")) if _luma(x) > 90]
    results["held_out_lit"] = {
        "ours (adaptive)": quality.measure(lit, ours_adaptive)[0],
        "ours": quality.measure(lit, ours)[0],
        "zero-dce (published)": quality.measure(lit, quality.learned(args.published))[0],
    }
    clip = quality.load_inputs([data / "real/vtest.avi"], darken=0.05)
    results["vtest_dark"] = {n: quality.measure(clip, fn)[0] for n, fn in (("ours", ours), ("he", methods["he"]))}

    t, pub = table["ours"], table["zero-dce (published)"]
    lit_change = results["held_out_lit"]["ours (adaptive)"]["lit_change"]
    v = results["vtest_dark"]
    checks = {
        "blown-out within 1 point of published": (
            t["blown_pct"],
            pub["blown_pct"] + 1,
            t["blown_pct"] <= pub["blown_pct"] + 1,
        ),
        "false colour within 1 point of published": (
            t["false_colour"],
            pub["false_colour"] + 1,
            t["false_colour"] <= pub["false_colour"] + 1,
        ),
        "dark inputs land at luma 90-150": (t["dark_luma_out"], "90-150", 90 <= t["dark_luma_out"] <= 150),
        "lit inputs change <= 10 (pipeline)": (lit_change, 10, lit_change is not None and lit_change <= 10),
        "vtest L_STC <= half of HE's": (v["ours"]["stc"], v["he"]["stc"] / 2, v["ours"]["stc"] <= v["he"]["stc"] / 2),
        "vtest output luma >= 80": (v["ours"]["luma_out"], 80, v["ours"]["luma_out"] >= 80),
    }
    results["targets"] = {k: {"value": a, "target": b, "pass": bool(c)} for k, (a, b, c) in checks.items()}
    print(quality.format_table(table))
    print(f"\nlit held-out photos: {len(lit)}; darkened vtest: {clip[0].shape}")
    for k, (a, b, c) in checks.items():
        print(f"{'PASS' if c else 'FAIL'}  {k}: {a if not isinstance(a, float) else round(a, 4)} (target {b})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


def _luma(x) -> float:
    return float((x.astype("float32") @ LUMA).mean())


if __name__ == "__main__":
    raise SystemExit(main())

"""``dtcm darkness PATH``: how dark a video is, or every video below a folder, as CSV or JSON."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from dtcm.checks import SCAN_VIDEO_SUFFIXES, files_under
from dtcm.darkness import DARK_LUMA, LIT_LUMA, SC, SEGMENTS, TAU

FIELDS = {  # column -> what it means (the --help text lists them)
    "path": "the video",
    "light": f"dark, dim or lit: the apps' one scale (dark up to brightness {DARK_LUMA:.0f}, lit from {LIT_LUMA:.0f})",
    "brightness": f"mean brightness (luma) of {SEGMENTS} frames spread over the video, 0 black to 255 white",
    "dv": f"the paper's darkness score Dv = brightness / {SC:.0f} - 1 (-1 black, 0 mid-grey)",
    "arid_dark": f"the paper's test (Eq. 14): Dv below -{TAU} (brightness under {SC * (1 - TAU):.0f}), "
    "as dark as the clips of ARID on average; stricter than light = dark",
    "arid_dark_vote": f"the paper's released tool: at least {TAU:.1%} of the {SEGMENTS} frames each below -{TAU}",
    "frames": "frames in the video",
    "error": "why the file could not be read (its other fields are empty)",
}
COLUMNS = list(FIELDS)


def add_cli_arguments(parser):
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "fields:\n" + "\n".join(f"  {name:<15} {text}" for name, text in FIELDS.items())
    parser.add_argument("path", help="a video file or a folder (searched recursively)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of CSV")


def _row(report) -> dict:
    return {
        "path": report.path,
        "light": report.light,
        "brightness": round(report.brightness, 1),
        "dv": report.dv,
        "arid_dark": report.dark,
        "arid_dark_vote": report.dark_vote,
        "frames": report.frames,
    }


def cli_main(args) -> int:
    from dtcm.darkness import video_darkness
    from dtcm.video import VideoError

    root = Path(args.path)
    if not root.exists():
        raise FileNotFoundError(f"no such file or folder: {root}")
    paths = files_under(root, SCAN_VIDEO_SUFFIXES)
    if not paths:
        raise ValueError(f"no videos ({', '.join(SCAN_VIDEO_SUFFIXES)}) under {root}")
    rows, failed = [], 0
    for p in paths:
        try:
            rows.append(_row(video_darkness(p)))
        except VideoError as exc:
            failed += 1
            rows.append({**dict.fromkeys(COLUMNS), "path": str(p), "frames": 0, "error": str(exc)})
            if root.is_file():
                raise
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        buf = io.StringIO()
        w = csv.DictWriter(buf, COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        sys.stdout.write(buf.getvalue())
    if failed:
        print(f"dtcm darkness: {failed} of {len(paths)} files could not be read", file=sys.stderr)
    return 0

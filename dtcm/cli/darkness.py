"""``dtcm darkness PATH``: the darkness score Dv of a video, or of every video below a folder, as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import asdict
from pathlib import Path

from dtcm.checks import SCAN_VIDEO_SUFFIXES, files_under

COLUMNS = ["path", "dv", "dark", "dark_vote", "frames", "error"]


def add_cli_arguments(parser):
    parser.add_argument("path", help="a video file or a folder (searched recursively)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of CSV")


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
            rows.append(asdict(video_darkness(p)))
        except VideoError as exc:
            failed += 1
            rows.append({"path": str(p), "dv": None, "dark": None, "dark_vote": None, "frames": 0, "error": str(exc)})
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

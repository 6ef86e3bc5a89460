"""`dtcm darkness` on real files: one row per video, CSV or JSON; unreadable files are reported."""

import csv
import io
import json

import numpy as np
import pytest

from dtcm.cli import main
from dtcm.darkness import video_darkness
from dtcm.video import write_video


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("darkness")
    (root / "sub").mkdir()
    write_video(root / "dark.mp4", np.full((16, 32, 32, 3), 6, np.uint8), 8)
    write_video(root / "sub" / "lit.mp4", np.full((16, 32, 32, 3), 140, np.uint8), 8)
    return root


def test_known_luma_files(folder):
    dark = video_darkness(folder / "dark.mp4")
    lit = video_darkness(folder / "sub" / "lit.mp4")
    # H.264 in limited range rounds the grey a little; luma stays within 2 levels
    assert dark.dv == pytest.approx((6 - 112) / 112, abs=2 / 112) and dark.dark and dark.dark_vote
    assert lit.dv == pytest.approx((140 - 112) / 112, abs=2 / 112) and not lit.dark
    assert dark.frames == 16


def test_folder_json_and_csv(folder, capsys):
    assert main(["darkness", str(folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["path"].split("/")[-1] for r in rows] == ["dark.mp4", "lit.mp4"]
    assert rows[0]["arid_dark"] is True and rows[1]["arid_dark"] is False
    assert [r["light"] for r in rows] == ["dark", "lit"] and rows[1]["brightness"] == pytest.approx(140, abs=2)
    assert main(["darkness", str(folder / "dark.mp4")]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == 1 and table[0]["arid_dark"] == "True" and table[0]["light"] == "dark"


def test_a_dim_clip_is_dark_on_the_one_scale_and_the_help_explains_every_field(tmp_path, capsys):
    write_video(tmp_path / "night.mp4", np.full((16, 32, 32, 3), 30, np.uint8), 8)  # brightness 30: dark to anyone
    assert main(["darkness", str(tmp_path / "night.mp4"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["light"] == "dark" and row["arid_dark"] is False  # the paper's stricter test, named as such
    with pytest.raises(SystemExit):
        main(["darkness", "--help"])
    help_text = capsys.readouterr().out
    for field in ("light", "brightness", "dv", "arid_dark", "arid_dark_vote", "frames"):
        assert f"\n  {field} " in help_text
    assert "released tool" in help_text and "stricter than light = dark" in help_text


def test_bad_files(folder, tmp_path, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 100)
    assert main(["darkness", str(junk)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dtcm darkness: error:")
    write_video(tmp_path / "ok.mp4", np.full((8, 32, 32, 3), 6, np.uint8), 8)
    assert main(["darkness", str(tmp_path), "--json"]) == 0  # a folder goes on past a bad file
    out = capsys.readouterr()
    rows = json.loads(out.out)
    assert {r["path"].split("/")[-1]: r["dv"] is None for r in rows} == {"junk.mp4": True, "ok.mp4": False}
    assert "1 of 2 files could not be read" in out.err
    assert main(["darkness", str(tmp_path / "missing")]) == 2

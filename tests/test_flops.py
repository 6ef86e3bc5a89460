"""Parameter and MAC counts of whole DTCM models (meta device: no real compute) and the flops CLI."""

import json

import pytest

from dtcm.cli import main
from dtcm.flops import model_cost


def test_dtcm_resnext101_matches_table_iii():
    cost = model_cost("dtcm_resnext101", frames=64, size=112, k=4)
    assert cost["params"]["backbone"] == 47_543_755
    assert cost["params"]["total"] / 1e6 == pytest.approx(47.57, abs=0.01)
    assert cost["macs"]["backbone"] / 1e9 == pytest.approx(38.27, rel=0.01)
    assert cost["macs"]["total"] / 1e9 == pytest.approx(43.24, rel=0.03)


def test_zerodce_baseline_macs_per_frame():
    cost = model_cost("zerodce_resnext101", frames=64, size=112, k=1)
    assert cost["params"]["enhancer"] == 79_416
    assert cost["macs"]["enhancer"] / 1e9 == pytest.approx(63.58, rel=0.005)  # 64 x 0.993 G


def test_flops_cli_json(capsys):
    argv = ["flops", "--backbone", "resnext101", "--classes", "400", "--frames", "16", "--size", "112", "--k", "4"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"]["backbone"] == 48_340_816
    assert set(out["params"]) == set(out["macs"]) == {"enhancer", "backbone", "total"}
    assert out["macs"]["backbone"] / 1e9 == pytest.approx(9.57, rel=0.01)
    assert out["params"]["total"] == out["params"]["enhancer"] + out["params"]["backbone"]


def test_flops_cli_errors_are_one_line(capsys):
    assert main(["flops", "--backbone", "vgg", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "known:" in err[0] and "resnext101" in err[0]
    assert main(["flops", "--k", "0"]) == 2
    assert "must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["flops", "--frames", "many"])
    assert exc.value.code == 2

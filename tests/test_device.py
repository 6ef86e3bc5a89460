"""The device policy (dtcm/device.py) without a GPU: the choice, its errors, precision, the ZeroGPU hook, and
``scripts/device_check.py --quick``."""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from dtcm import cli, device, hub
from dtcm.model import create_model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "weights" / "dtcm-shufflenetv2-wstc4"
EXAMPLES = sorted((ROOT / "examples").glob("*.mp4"))
NO_GPU = "DTCM_DEVICE=cuda asks for a GPU but torch sees none; unset it or set DTCM_DEVICE=cpu"


@pytest.fixture
def cuda(monkeypatch):
    """Set whether torch "sees" a GPU, with DTCM_DEVICE unset."""
    monkeypatch.delenv(device.DEVICE_ENV, raising=False)

    def set_available(value: bool):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: value)

    return set_available


# ------------------------------------------------------------------------------------------ the choice
def test_cpu_without_a_gpu_cuda_with_one(cuda):
    cuda(False)
    assert device.resolve_device() == torch.device("cpu")
    cuda(True)
    assert device.resolve_device() == torch.device("cuda")


def test_dtcm_device_cpu_wins_over_a_gpu(cuda, monkeypatch):
    cuda(True)
    monkeypatch.setenv(device.DEVICE_ENV, "CPU")
    assert device.resolve_device() == torch.device("cpu")


def test_forced_cuda_without_a_gpu_is_one_sentence(cuda, monkeypatch):
    cuda(False)
    monkeypatch.setenv(device.DEVICE_ENV, "cuda")
    with pytest.raises(device.DeviceError) as err:
        device.resolve_device()
    assert str(err.value) == NO_GPU


@pytest.mark.parametrize("value", ["tpu", "gpu", "cuda:1"])
def test_bad_value_names_it_and_what_is_accepted(cuda, monkeypatch, value):
    cuda(True)
    monkeypatch.setenv(device.DEVICE_ENV, value)
    with pytest.raises(device.DeviceError, match=rf"^DTCM_DEVICE must be cpu or cuda .*, got '{value}'$"):
        device.resolve_device()


def test_cli_turns_a_forced_cuda_into_one_line(cuda, monkeypatch, capsys):
    if not EXAMPLES:
        pytest.skip("examples/ has no clips")
    cuda(False)
    monkeypatch.setenv(device.DEVICE_ENV, "cuda")
    assert cli.main(["predict", str(EXAMPLES[0])]) == 2
    assert capsys.readouterr().err == f"dtcm predict: error: {NO_GPU}\n"


def test_service_turns_a_forced_cuda_into_a_service_error(cuda, monkeypatch, tmp_path):
    from dtcm import service

    create_model("dtcm_tiny_test").save_pretrained(tmp_path / "tiny")
    monkeypatch.setitem(
        service.models._runtime_variants, "device-test", {"path": str(tmp_path / "tiny"), "runtime": True}
    )
    cuda(False)
    monkeypatch.setenv(device.DEVICE_ENV, "cuda")
    with pytest.raises(service.ServiceError) as err:
        service.get_model("device-test")
    assert str(err.value) == f"model 'device-test' could not be loaded: {NO_GPU}"
    assert "device-test" not in service.models._cache


# ------------------------------------------------------------------------------------------- precision
def test_autocast_is_a_float32_no_op_on_cpu():
    assert device.autocast_dtype("cpu") is None
    assert device.autocast_dtype(torch.device("cuda")) is torch.bfloat16
    a, b = torch.rand(4, 8), torch.rand(8, 3)
    with device.autocast(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
        assert (a @ b).dtype == torch.float32


def test_to_device_keeps_a_cpu_model_as_it_is(cuda):
    cuda(False)
    model = create_model("dtcm_tiny_test")
    ptrs = [p.data_ptr() for p in model.parameters()]
    assert device.to_device(model) is model
    assert [p.data_ptr() for p in model.parameters()] == ptrs
    assert device.device_of(model) == torch.device("cpu")


def test_infer_is_plain_forward_on_cpu_for_the_shipped_weights():
    if not (SHIPPED / "model.safetensors").is_file():
        pytest.skip(f"{SHIPPED} is not installed")
    model = hub.resolve_model(str(SHIPPED))
    cfg = model.config
    x = torch.rand(2, 3, cfg.clip_len, cfg.crop_size, cfg.crop_size, generator=torch.Generator().manual_seed(0)) * 0.2
    with torch.inference_mode():
        want = model(x, k=4)
        want_y, _ = model.enhance(x, 4)
    got = device.infer(model, x, k=4)
    assert got.dtype == torch.float32 and got.device.type == "cpu"
    assert torch.equal(got, want)  # bit for bit: the CPU path changes nothing
    with torch.inference_mode():
        y, _ = model.enhance(x.to(device.device_of(model)), 4)
    assert torch.equal(y, want_y)


class _Bf16Head(torch.nn.Module):
    """Stands in for a DTCM whose classifier ran under bf16 autocast (as on CUDA)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3, 5))

    def enhance(self, x, k=None):
        return x, None

    def classify(self, y):
        return (y.mean(dim=(2, 3, 4)) @ self.w).to(torch.bfloat16)  # (B, 5)


def test_infer_returns_float32_on_the_cpu_whatever_the_classifier_dtype():
    out = device.infer(_Bf16Head(), torch.rand(2, 3, 4, 8, 8))
    assert out.dtype == torch.float32 and out.device.type == "cpu" and out.shape == (2, 5)
    assert out.numpy().dtype == np.float32


# -------------------------------------------------------------------------------------- the ZeroGPU hook
def _task(x):
    return x + 1


def _fake_spaces(calls: list):
    fake = types.ModuleType("spaces")

    def gpu(task=None, *, duration=None):
        calls.append(duration)

        def wrap(fn):
            def wrapped(*args, **kwargs):
                return ("on gpu", fn(*args, **kwargs))

            return wrapped

        return wrap

    fake.GPU = gpu
    return fake


def test_gpu_hook_returns_the_function_without_spaces(monkeypatch):
    monkeypatch.setenv(device.ZERO_GPU_ENV, "true")
    monkeypatch.setitem(sys.modules, "spaces", None)  # import spaces -> ImportError
    assert device.gpu(_task) is _task
    assert device.gpu(duration=5)(_task) is _task


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_gpu_hook_returns_the_function_off_zero_gpu(monkeypatch, value):
    calls = []
    monkeypatch.setitem(sys.modules, "spaces", _fake_spaces(calls))
    if value is None:
        monkeypatch.delenv(device.ZERO_GPU_ENV, raising=False)
    else:
        monkeypatch.setenv(device.ZERO_GPU_ENV, value)
    assert device.gpu(_task) is _task and device.gpu(duration=5)(_task) is _task
    assert calls == []


def test_gpu_hook_wraps_with_spaces_gpu_on_zero_gpu(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "spaces", _fake_spaces(calls))
    monkeypatch.setenv(device.ZERO_GPU_ENV, "true")
    assert device.gpu(duration=120)(_task)(1) == ("on gpu", 2)
    assert device.gpu(_task)(1) == ("on gpu", 2)
    assert calls == [120, device.GPU_SECONDS]


def test_device_module_imports_no_torch():
    code = "import sys, dtcm.device; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def _service_attr(node) -> str | None:
    """``name`` for the expression ``service.name``, else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "service":
        return node.attr
    return None


def test_app_model_calls_go_through_the_gpu_hook():
    tree = ast.parse((ROOT / "app.py").read_text())
    model_calls = {"analyse", "compare", "enhance_clip", "enhance_video", "timeline"}
    wrapped, direct = set(), []
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name != "warm_up"):
        for node in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):  # warm_up runs off ZeroGPU only
            if isinstance(node.func, ast.Name) and node.func.id == "_on_gpu" and node.args:
                wrapped.add(_service_attr(node.args[0]))
            elif _service_attr(node.func) in model_calls:
                direct.append(f"{fn.name} calls service.{node.func.attr} directly")
    assert not direct, direct
    assert wrapped == model_calls - {"enhance_clip"}  # the app enhances through enhance_video
    on_gpu = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_on_gpu")
    assert [ast.unparse(d) for d in on_gpu.decorator_list] == ["gpu(duration=GPU_SECONDS)"]


@pytest.mark.slow
def test_app_on_zero_gpu_wraps_its_model_calls_and_stays_torch_free(tmp_path):
    (tmp_path / "spaces.py").write_text(
        "CALLS = []\n"
        "def GPU(task=None, *, duration=None):\n"
        "    CALLS.append(duration)\n"
        "    return lambda fn: setattr(fn, 'zerogpu', duration) or fn\n"
    )
    code = (
        "import sys, app, spaces\n"
        "assert 'torch' not in sys.modules, 'app imported torch'\n"
        "assert spaces.CALLS == [60] and app._on_gpu.zerogpu == 60, spaces.CALLS\n"
    )
    env = {**os.environ, "SPACES_ZERO_GPU": "true", "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop("DTCM_GPU_SECONDS", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ------------------------------------------------------------------------------------ device_check --quick
def _numbers(tree, path=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield path, tree


def test_device_check_quick_writes_every_section(tmp_path):
    out = tmp_path / "tmp.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "device_check.py"), "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["quick"] is True
    for name in ("analyse", "enhancer", "train", "bf16"):
        assert report[name]["status"] == "ok", report[name]
    numbers = dict(_numbers(report))
    assert all(math.isfinite(v) and v >= 0 for v in numbers.values()), numbers
    positive = [p for p in numbers if p.endswith(("_ms", "_fps", "clips_per_s", "_mb", "seconds"))]
    assert positive and all(numbers[p] > 0 for p in positive), {p: numbers[p] for p in positive}
    for k in ("k1", "k4", "k16"):
        assert report["enhancer"][k]["clip_enhancer_fps"] > 0 and report["enhancer"][k]["enhance_frames_fps"] > 0
    for k in ("k1", "k4"):
        assert report["train"][k]["clips_per_s"] > 0 and report["train"][k]["peak_rss_mb"] > 0
    agree = report["bf16"]["shipped"]
    assert 0 < agree["max_abs_diff"] < agree["max_logit"] and 0 <= agree["top1_agreement"] <= 1
    assert report["analyse"]["shipped"]["median_ms"] > 0 and report["analyse"]["dtcm_tiny_test"]["median_ms"] > 0


def test_device_check_keeps_going_past_a_failing_or_hanging_section(tmp_path, monkeypatch):
    import dataclasses
    import importlib.util
    import time

    spec = importlib.util.spec_from_file_location("device_check", ROOT / "scripts" / "device_check.py")
    dc = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "device_check", dc)
    spec.loader.exec_module(dc)

    def fails(sizes, dev):
        raise RuntimeError("CUDA out of memory")

    def hangs(sizes, dev):
        while True:
            time.sleep(0.05)

    monkeypatch.setattr(dc, "SECTIONS", {"train": fails, "bf16": hangs, "ok": lambda sizes, dev: {"x": 1.0}})
    monkeypatch.setattr(dc, "QUICK", dataclasses.replace(dc.QUICK, budget_s=0.4))
    out = tmp_path / "tmp.json"
    assert dc.main(["--quick", "--out", str(out), "--sections", "train,bf16,ok"]) == 1
    report = json.loads(out.read_text())
    assert report["train"]["status"] == "failed" and report["train"]["error"] == "RuntimeError: CUDA out of memory"
    assert report["bf16"]["status"] == "failed" and report["bf16"]["error"].startswith("SectionTimeout")
    assert report["ok"] == {"status": "ok", "x": 1.0, "seconds": report["ok"]["seconds"]}


def test_cuda_expected_follows_the_policy_without_importing_torch(monkeypatch):
    from dtcm import device

    monkeypatch.setenv("DTCM_DEVICE", "cpu")
    assert device.cuda_expected() is False
    monkeypatch.setenv("DTCM_DEVICE", "cuda")
    assert device.cuda_expected() is True  # the fine-tune bounds then offer the GPU-sized backbones
    monkeypatch.delenv("DTCM_DEVICE")
    import torch

    assert device.cuda_expected() == torch.cuda.is_available()

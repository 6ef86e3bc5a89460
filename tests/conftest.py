"""Fixtures shared by the test rooms: one thread, tiny weights folders, dark clips, the research data.

Everything here is built from code at toy sizes in seconds; nothing needs the network. The research data
beside the repository (``../shared/data``) is optional: ``shared_data`` skips with the reason when it is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"  # research-licensed: read in tests, never copied into the repository


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: toy tensors are as fast, and far faster when other jobs share the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def shared_data():
    """``../shared/data`` as a Path, or a skip that says what is missing."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the research data at {SHARED_DATA} (not part of the repository)")
    return SHARED_DATA


def _tiny_weights(root: Path, variants: dict[str, dict], default: str, enhancers: tuple[str, ...] = ()) -> Path:
    """A weights folder of toy models: ``variants`` maps name -> ``create_model`` overrides (``w_stc`` ...),
    each listed in ``index.json`` as a DTCM variant; ``enhancers`` are Zero-DCE-only entries."""
    from dtcm.model import create_model

    models = {}
    for name, overrides in variants.items():
        create_model("dtcm_tiny_test", **overrides).save_pretrained(root / name)
        w_stc = overrides.get("w_stc", 4.0)
        models[name] = {"path": name, "description": "test", "w_stc": w_stc, "k": 4, "metrics": {}}
    for name in enhancers:
        create_model("dtcm_tiny_test", enhancer="zerodce").save_pretrained(root / name)
        models[name] = {"path": name, "description": "enh", "enhancer_only": True}
    (root / "index.json").write_text(json.dumps({"default": default, "models": models}))
    return root


def _serve_weights(root: Path):
    """Point the service at ``root`` (``DTCM_WEIGHTS_DIR``) with an empty model cache; a generator for a
    fixture to ``yield from``, which puts both back afterwards."""
    from dtcm import service

    old = os.environ.get("DTCM_WEIGHTS_DIR")
    os.environ["DTCM_WEIGHTS_DIR"] = str(root)
    service.models._cache.clear()
    yield root
    service.models._cache.clear()
    if old is None:
        os.environ.pop("DTCM_WEIGHTS_DIR")
    else:
        os.environ["DTCM_WEIGHTS_DIR"] = old


@pytest.fixture(scope="session")
def encode_video():
    """``encode(path, frames, codec="libx264", rate=10, pix_fmt="yuv420p", ...)``: PyAV directly, for what
    ``write_video`` does not write (other codecs and pixel formats, odd sizes, variable frame rates, rotation)."""
    from fractions import Fraction

    import av

    def encode(
        path, frames, codec="libx264", rate=10, pix_fmt="yuv420p", fmt="rgb24", pts=None, rotation=None, options=None
    ):
        frames = np.asarray(frames)
        with av.open(str(path), "w") as c:
            s = c.add_stream(codec, rate=rate)
            s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
            s.options = {"preset": "ultrafast", **(options or {})} if codec == "libx264" else (options or {})
            if pts is not None:
                s.codec_context.time_base = Fraction(1, 1000)
            if rotation is not None:
                s.set_display_rotation(rotation)
            for i, f in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(f if fmt == "rgb24" else f[..., 0], format=fmt)
                if pts is not None:
                    frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
                for p in s.encode(frame):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        return path

    return encode


@pytest.fixture(scope="session")
def make_tiny_weights():
    """``make(root, {name: create_model overrides}, default, enhancers=())``: a weights folder of toy models."""
    return _tiny_weights


@pytest.fixture(scope="session")
def serving():
    """``yield from serving(root)`` in a fixture: the service reads ``root`` as its weights folder meanwhile."""
    return _serve_weights

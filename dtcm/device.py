"""Where models run: the one device policy of the service, the CLI, training and both UIs.

CUDA when torch sees a GPU, else the CPU; ``DTCM_DEVICE=cpu|cuda`` forces one. On CUDA the classifier runs
under bf16 autocast while the enhancer (curve estimation and curve application) stays float32: it is tiny,
and the enhanced frames are what users look at. On the CPU everything is float32 and nothing is wrapped, so
CPU numerics are exactly those of a plain ``model(x)``. Models move once, when they are loaded; inputs
follow the model; results come back to the CPU. Training takes its device from here and its precision from
Accelerate (``--mixed-precision auto``: bf16 on CUDA, none on the CPU).

:func:`gpu` is the ZeroGPU hook: ``spaces.GPU(duration=...)`` on a Hugging Face ZeroGPU Space, the function
itself everywhere else. This module imports torch only inside its functions, so ``app.py`` can use the hook
and stay torch-free.

Example:
    >>> import torch
    >>> from dtcm import device
    >>> from dtcm.model import create_model
    >>> model = device.to_device(create_model("dtcm_tiny_test"))  # once, at load
    >>> clip = torch.rand(2, 3, model.config.clip_len, 32, 32)
    >>> device.infer(model, clip, k=4).shape  # (B, C) float32 on the CPU
    torch.Size([2, 11])
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEVICE_ENV",
    "DeviceError",
    "ZERO_GPU_ENV",
    "autocast",
    "autocast_dtype",
    "device_of",
    "gpu",
    "infer",
    "on_zero_gpu",
    "cuda_expected",
    "resolve_device",
    "synchronize",
    "to_device",
]

DEVICE_ENV = "DTCM_DEVICE"  # "cpu" or "cuda" forces the device; unset or empty: CUDA when present
DEVICE_CHOICES = ("cpu", "cuda")
ZERO_GPU_ENV = "SPACES_ZERO_GPU"  # set to "true" by Hugging Face on ZeroGPU Spaces
GPU_SECONDS = 60  # default ZeroGPU time slot per call


class DeviceError(ValueError):
    """A device that cannot be used, in one sentence."""


def resolve_device() -> torch.device:
    """The device models run on: ``$DTCM_DEVICE`` if set, else CUDA when torch sees a GPU, else the CPU.

    Returns:
        ``torch.device("cuda")`` or ``torch.device("cpu")``.
    Raises:
        DeviceError: ``DTCM_DEVICE`` is not cpu or cuda, or asks for cuda where there is none.
    """
    import torch

    want = os.environ.get(DEVICE_ENV, "").strip().lower()
    if want and want not in DEVICE_CHOICES:
        raise DeviceError(
            f"{DEVICE_ENV} must be cpu or cuda (or unset: CUDA when present), got {os.environ[DEVICE_ENV]!r}"
        )
    available = torch.cuda.is_available()
    if want == "cuda" and not available:
        raise DeviceError(f"{DEVICE_ENV}=cuda asks for a GPU but torch sees none; unset it or set {DEVICE_ENV}=cpu")
    return torch.device(want or ("cuda" if available else "cpu"))


def cuda_expected() -> bool:
    """Whether models will run on CUDA, for a process that must not import torch to ask (the UIs).

    Follows :func:`resolve_device`: ``DTCM_DEVICE`` first; else torch's answer when torch is already loaded,
    else whether an NVIDIA device is visible.
    """
    import sys

    want = os.environ.get(DEVICE_ENV, "").strip().lower()
    if want in DEVICE_CHOICES:
        return want == "cuda"
    if "torch" in sys.modules:
        return bool(sys.modules["torch"].cuda.is_available())
    return os.path.exists("/dev/nvidia0") and os.environ.get("CUDA_VISIBLE_DEVICES", "0") not in ("", "-1")


def device_of(model) -> torch.device:
    """The device a model's weights are on."""
    return next(model.parameters()).device


def to_device(model):
    """Move a freshly loaded model to :func:`resolve_device` (in place, as ``nn.Module.to`` does); returns it."""
    return model.to(resolve_device())


def autocast_dtype(device) -> torch.dtype | None:
    """The autocast dtype of the classifier on ``device``: ``torch.bfloat16`` on CUDA, None (float32) elsewhere."""
    import torch

    return torch.bfloat16 if torch.device(device).type == "cuda" else None


def autocast(device):
    """bf16 autocast on CUDA; on any other device a no-op context (float32, nothing changes)."""
    import torch

    dtype = autocast_dtype(device)
    return torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()


def synchronize(device) -> None:
    """Wait for queued CUDA work (for timings); nothing to wait for on the CPU."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def infer(model, x, k: int | None = None):
    """Logits of a DTCM model under the device policy: enhance in float32, classify under :func:`autocast`.

    Args:
        model: a DTCM model, already on its device (:func:`to_device`).
        x: (B, 3, T, H, W) float in [0, 1], on any device (it follows the model).
        k: frame-sharing factor; default the model's.
    Returns:
        (B, num_classes) float32 logits on the CPU.
    """
    import torch

    dev = device_of(model)
    with torch.inference_mode():
        y, _ = model.enhance(x.to(dev), k)
        with autocast(dev):
            logits = model.classify(y)
    return logits.float().cpu()


# ---------------------------------------------------------------------------------------- ZeroGPU
def on_zero_gpu() -> bool:
    """Whether this process runs on a ZeroGPU Space (``SPACES_ZERO_GPU`` true, as the ``spaces`` package reads it)."""
    return os.environ.get(ZERO_GPU_ENV, "").strip().lower() in ("1", "t", "true")


def gpu(fn=None, *, duration: int = GPU_SECONDS):
    """``spaces.GPU(duration=duration)`` on a ZeroGPU Space with ``spaces`` installed; elsewhere ``fn`` itself.

    Use as ``@gpu`` or ``@gpu(duration=120)``. On ZeroGPU the call runs with a GPU attached for at most
    ``duration`` seconds; models should be moved to CUDA before (at load), as ZeroGPU expects.
    """
    if fn is None:
        return functools.partial(gpu, duration=duration)
    if not on_zero_gpu():
        return fn
    try:
        import spaces  # provided by ZeroGPU Spaces; it must come before CUDA is touched
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)

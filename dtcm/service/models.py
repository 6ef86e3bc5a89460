"""The service's one model cache: which variants exist, loading them once, and the shared model slots.

The shipped variants come from ``weights/index.json`` (``dtcm.hub``), the ones visitors saved from the saved
folder's own index (``dtcm.storage.saved_root``); a fine-tune of this server process joins them through
``register_variant`` and stays private to the visitor key that made it until it is saved: only that key
lists, loads or starts from it. A UI passes the key as ``owner`` or runs the call inside
``as_visitor(key)``. Loaded models live in a bounded LRU cache, and every model call of every endpoint and
UI holds one of ``DTCM_CONCURRENCY`` slots. This module's state (``_cache``, ``_runtime_variants``,
``SLOT_WAIT_S``) is what tests patch.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import os
import threading
from pathlib import Path

from dtcm.service.inputs import ServiceError

__all__ = [
    "MODEL_CACHE_SIZE",
    "MODEL_CONCURRENCY",
    "as_visitor",
    "class_names",
    "default_variant",
    "get_model",
    "list_variants",
    "model_slot",
    "register_variant",
    "variant_for_wstc",
    "wstc_choices",
]

MODEL_CACHE_SIZE = int(os.environ.get("DTCM_MODEL_CACHE", "4"))  # models held in memory at once
MODEL_CONCURRENCY = int(os.environ.get("DTCM_CONCURRENCY", "2"))  # model calls at once, over every endpoint and UI
SLOT_WAIT_S = 300.0  # a request waits this long for a free model slot before "the server is busy"

_model_slots = threading.BoundedSemaphore(max(1, MODEL_CONCURRENCY))
_cache: collections.OrderedDict = collections.OrderedDict()  # variant name -> loaded model, oldest first
_cache_lock = threading.Lock()
_runtime_variants: dict[str, dict] = {}  # fine-tuned in this server process: name -> index entry (with its owner)
_visitor: contextvars.ContextVar = contextvars.ContextVar("dtcm_visitor", default=None)  # see as_visitor


@contextlib.contextmanager
def as_visitor(owner: str | None):
    """Run the service calls inside for the visitor key ``owner``: they see that visitor's fine-tunes.

    Example:
        >>> register_variant("finetune-demo", "/runs/finetune-demo/final", owner="key-a")
        >>> with as_visitor("key-b"):
        ...     "finetune-demo" in list_variants("all")
        False
        >>> with as_visitor("key-a"):
        ...     "finetune-demo" in list_variants("all")
        True
        >>> forget_variants_under("/runs/finetune-demo")
    """
    token = _visitor.set(owner)
    try:
        yield
    finally:
        _visitor.reset(token)


def _who(owner: str | None) -> str | None:
    return owner if owner is not None else _visitor.get()


# -------------------------------------------------------------------------------------------- slots
@contextlib.contextmanager
def model_slot():
    """Hold one of the server's ``DTCM_CONCURRENCY`` model slots: analyse, enhance and compare share them."""
    if not _model_slots.acquire(timeout=SLOT_WAIT_S):
        raise ServiceError("the server is busy with other requests; please try again in a minute")
    try:
        yield
    finally:
        _model_slots.release()


def in_model_slot(fn):
    """``fn`` run while holding a model slot."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with model_slot():
            return fn(*args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------------------------- variants
def list_variants(kind: str = "classifier", owner: str | None = None) -> dict[str, dict]:
    """Selectable models: the shipped ones of ``weights/index.json``, the saved ones, and the visitor's own
    fine-tunes of this server process.

    Args:
        kind: "classifier" (full DTCM models), "enhancer" (zero-reference enhancers) or "all".
        owner: the visitor's key (default: the one of ``as_visitor``; None: fine-tunes started from Python).
    Returns:
        name -> index entry (description, w_stc, k, metrics, path).
    """
    from dtcm import hub, storage

    who = _who(owner)
    shipped = hub.list_variants()
    saved = {n: {**e, "saved": True} for n, e in hub.list_variants(storage.saved_root()).items() if n not in shipped}
    own = {n: e for n, e in _runtime_variants.items() if e.get("owner") == who and e.get("saved_as") not in saved}
    out = {**shipped, **saved, **own}  # the shipped ones first, the default leading
    if kind == "all":
        return out
    want_enhancer = kind == "enhancer"
    return {n: e for n, e in out.items() if bool(e.get("enhancer_only")) == want_enhancer}


def default_variant() -> str:
    """The index's default classifier when it is installed, else the first one."""
    from dtcm import hub

    variants = list_variants()
    if not variants:
        raise ServiceError("no model weights are installed: the weights/ folder has no classifier variants")
    default = hub.default_variant()
    return default if default in variants else next(iter(variants))


def variant_config(variant: str | None = None, owner: str | None = None):
    """A variant's ``DTCMConfig``, read from its folder (no model is loaded)."""
    from dtcm.config import DTCMConfig

    name = variant or default_variant()
    entry = list_variants("all", owner).get(name)
    if entry is None:
        raise ServiceError(f"there is no variant {name!r}")
    try:
        return DTCMConfig.load(Path(entry["path"]) / "config.json")
    except OSError as exc:
        from dtcm import storage

        raise ServiceError(f"the config of {name!r} could not be read: {storage.public_text(str(exc))}") from None


def class_names(variant: str | None = None, owner: str | None = None) -> list[str]:
    """The actions a variant knows, read from its config (no model is loaded)."""
    return list(variant_config(variant, owner).class_names)


def wstc_choices() -> list[float]:
    """The W_STC values that have a trained variant, for a slider that snaps to them."""
    return sorted({float(e["w_stc"]) for e in list_variants().values() if e.get("w_stc") is not None})


def variant_for_wstc(w_stc: float) -> str:
    """The shipped variant trained with the W_STC value nearest to ``w_stc``."""
    variants = {
        n: e
        for n, e in list_variants().items()
        if e.get("w_stc") is not None and not e.get("runtime") and not e.get("saved")
    }
    if not variants:
        return default_variant()
    return min(variants, key=lambda n: (abs(float(variants[n]["w_stc"]) - float(w_stc)), n))


# ---------------------------------------------------------------------------------- runtime variants
def register_variant(name: str, path: str | Path, **entry) -> None:
    """Make a model folder (e.g. a fine-tune's result) selectable in this server process."""
    _runtime_variants[name] = {"path": str(path), "runtime": True, **entry}
    with _cache_lock:
        _cache.pop(name, None)


def runtime_variant(name: str | None, owner: str | None = None) -> dict | None:
    """The index entry of the visitor's variant fine-tuned in this process, or None (also for another's)."""
    entry = _runtime_variants.get(name) if name is not None else None
    return entry if entry is not None and entry.get("owner") == _who(owner) else None


def forget_variants_under(folder: str | Path) -> None:
    """Drop this process's variants whose folder lies inside ``folder`` (a removed run)."""
    for name in [n for n, e in _runtime_variants.items() if Path(e["path"]).is_relative_to(folder)]:
        _runtime_variants.pop(name, None)


# ------------------------------------------------------------------------------------------- loading
def _set_threads() -> None:
    """One torch thread per two cores (``DTCM_TORCH_THREADS`` overrides): on a small shared CPU, two threads
    stall each other (measured 5-40x slower than one on our 2-core machines, benchmarks/enhancer_speed.py)."""
    import torch

    threads = int(os.environ.get("DTCM_TORCH_THREADS", max(1, (os.cpu_count() or 2) // 2)))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def get_model(variant: str | None = None, owner: str | None = None):
    """Load a variant once, on the device of :mod:`dtcm.device`, and keep it in a bounded LRU cache
    (``DTCM_MODEL_CACHE`` models). Another visitor's unsaved fine-tune is refused as if it did not exist."""
    from dtcm import device, hub, storage

    _set_threads()
    name = variant or default_variant()
    entry = runtime_variant(name, owner)
    if entry is None and name not in hub.list_variants():
        entry = hub.list_variants(storage.saved_root()).get(name)  # saved here by a visitor
        if entry is None and name in _runtime_variants:  # another visitor's unsaved fine-tune
            raise ServiceError(f"there is no variant {name!r}")
    with _cache_lock:
        if name in _cache:
            _cache.move_to_end(name)
            return _cache[name]
        try:
            model = device.to_device(hub.resolve_model(entry["path"] if entry else name).eval())
        except ServiceError:
            raise
        except (ValueError, OSError) as exc:  # a DeviceError (DTCM_DEVICE) too
            raise ServiceError(f"model {name!r} could not be loaded: {storage.public_text(str(exc))}") from None
        _cache[name] = model
        while len(_cache) > MODEL_CACHE_SIZE:
            _cache.popitem(last=False)
        return model

"""One registry of named builders (timm's ``_registry`` idea) for backbones, enhancers and DTCM variants.

A module registers a builder with ``@register_model(kind)``; ``create_model(kind, name, **kwargs)`` calls it
and ``list_models(kind)`` lists the names. A kind's builders live in one module, imported the first time
that kind is asked for, so the registry itself imports nothing heavy.

Example:
    >>> from dtcm.registry import list_models
    >>> list_models("enhancer")
    ['lightdce', 'lightdce_scene', 'zerodce', 'zerodce_scene']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["KINDS", "create_model", "is_model", "list_models", "model_entrypoint", "model_info", "register_model"]

# kind -> the module whose import registers its builders
KINDS = {"backbone": "dtcm.backbones", "enhancer": "dtcm.enhancer", "model": "dtcm.model"}

_builders: dict[str, dict[str, Callable]] = {kind: {} for kind in KINDS}
_info: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}


def _kind(kind: str) -> dict[str, Callable]:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    importlib.import_module(KINDS[kind])  # registers the kind's builders on first use
    return _builders[kind]


def register_model(kind: str, name: str | None = None, **info) -> Callable:
    """Decorator: register a builder (function or class) under ``name`` (default its ``__name__``).

    Args:
        kind: one of ``KINDS``.
        name: the registered name.
        **info: what the registry keeps beside the builder (e.g. a variant's config fields, ``hara=True``).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")

    def add(fn: Callable) -> Callable:
        key = name or fn.__name__
        if key in _builders[kind]:
            raise ValueError(f"{kind} {key!r} is registered twice")
        _builders[kind][key] = fn
        _info[kind][key] = dict(info)
        return fn

    return add


def list_models(kind: str, **info) -> list[str]:
    """Sorted names of one kind; ``info`` keeps those registered with those values (e.g. ``hara=True``)."""
    builders = _kind(kind)
    return sorted(n for n in builders if all(_info[kind][n].get(k) == v for k, v in info.items()))


def is_model(kind: str, name: str) -> bool:
    return name in _kind(kind)


def model_entrypoint(kind: str, name: str) -> Callable:
    """The builder registered as ``name``; ``ValueError`` names the known ones."""
    builders = _kind(kind)
    if name not in builders:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(list_models(kind))}")
    return builders[name]


def model_info(kind: str, name: str) -> dict:
    """A copy of what was registered beside the builder."""
    model_entrypoint(kind, name)
    return dict(_info[kind][name])


def create_model(kind: str, name: str, **kwargs):
    """Build the ``kind`` called ``name``: ``model_entrypoint(kind, name)(**kwargs)``."""
    return model_entrypoint(kind, name)(**kwargs)

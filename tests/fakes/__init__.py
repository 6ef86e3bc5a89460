"""Stand-ins for the UI tests: ``installed()`` puts the fake service in place of ``dtcm.service``.

The UI modules are imported afresh under it (and dropped again afterwards), so ``import app`` or a
Streamlit page run builds on the fake; every other module keeps the real service. ``fresh_ui()`` does
the same with the real service, for a test that needs the UIs built in its own environment.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

UI_MODULES = ("app", "streamlit_app", "dtcm.presentation", "dtcm.ui_gradio")  # and their submodules


def _forget_ui_modules() -> dict:
    """Drop the UI modules from ``sys.modules`` and from their packages; returns what was there."""
    gone = {}
    for name in [m for m in sys.modules if any(m == u or m.startswith(u + ".") for u in UI_MODULES)]:
        gone[name] = sys.modules.pop(name)
        parent, _, child = name.rpartition(".")
        if parent in sys.modules and getattr(sys.modules[parent], child, None) is gone[name]:
            delattr(sys.modules[parent], child)
    return gone


@contextlib.contextmanager
def fresh_ui():
    """The UI modules imported afresh inside the block; the ones imported before are back afterwards."""
    kept = _forget_ui_modules()
    try:
        yield
    finally:
        _forget_ui_modules()
        for name, module in kept.items():
            sys.modules[name] = module
            parent, _, child = name.rpartition(".")
            if parent in sys.modules:
                setattr(sys.modules[parent], child, module)


@contextlib.contextmanager
def installed():
    """Yield the fake service module while ``dtcm.service`` is it; the real one is back afterwards."""
    import dtcm
    from fakes import service as fake

    real = importlib.import_module("dtcm.service")
    with fresh_ui():
        fake.reset()
        sys.modules["dtcm.service"], dtcm.service = fake, fake
        try:
            yield fake
        finally:
            sys.modules["dtcm.service"], dtcm.service = real, real

"""Every Gradio handler's failures as one human sentence in a ``gr.Error``."""

from __future__ import annotations

import functools

import gradio as gr

from dtcm import presentation as ui

__all__ = ["human_errors"]


def human_errors(fn):
    """Show ``ServiceError`` text as is; log anything else and show a generic sentence."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise gr.Error(ui.error_sentence(exc, where=fn.__name__), print_exception=False) from None

    return wrapper

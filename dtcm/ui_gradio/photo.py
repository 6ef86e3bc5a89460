"""The photo input: Gradio's image box, with the size in the file's header checked before anything decodes it."""

from __future__ import annotations

import gradio as gr

from dtcm.images import ImageError, check_image

__all__ = ["photo_input"]


def photo_input(**kwargs) -> gr.Image:
    """``gr.Image(type="filepath")`` that refuses, in one sentence, a photo whose header is unreadable or too large.

    Gradio's own preprocessing opens the upload with PIL, whose refusal of a huge image reaches the visitor as an
    empty error, and converts an image of another mode (a 1-bit PNG, a palette BMP) to RGB, decoding all of it.
    Here the header is checked first (``dtcm.images.check_image``; the upload keeps the visitor's file name) and
    the file is handed on as it is (``image_mode=None``). The check wraps this one component's ``preprocess``: a
    subclass of a Gradio component would make Gradio write a type stub beside this file.
    """
    box = gr.Image(type="filepath", image_mode=None, **kwargs)
    gradio_preprocess = box.preprocess

    def preprocess(payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            try:
                check_image(payload.path)
            except ImageError as e:
                raise gr.Error(str(e), print_exception=False) from None
        return gradio_preprocess(payload)

    box.preprocess = preprocess
    return box

"""Still images in and out: jpg, png, bmp and webp as uint8 (H, W, 3) RGB (OpenCV).

Every read checks the size the file's header states before anything is decoded: a few kilobytes of
compressed pixels can stand for gigabytes of decoded ones.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import cv2
import numpy as np

from dtcm.checks import IMAGE_SUFFIXES, is_image
from dtcm.video.limits import LIMITS

__all__ = ["IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS", "ImageError", "check_image", "is_image", "read_image", "write_image"]

MAX_IMAGE_PIXELS = 50_000_000  # photos above this many pixels (an 8K frame is 33 million) are refused undecoded


class ImageError(ValueError):
    """An image that cannot or may not be read, in one sentence."""


def _check_suffix(path: Path) -> None:
    if not is_image(path):
        raise ValueError(f"{path.name!r} is not an image file name; accepted: {', '.join(IMAGE_SUFFIXES)}")


def check_image(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """(width, height) from the image's header, read without decoding its pixels.

    Raises:
        ImageError: the header cannot be read, or the image is larger than ``max_pixels`` or of an aspect
            ratio beyond ``video.LIMITS.max_aspect`` (the bound frames of a video have too).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    name = repr(path.name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                w, h = im.size
    except Image.DecompressionBombError as e:  # PIL's own bound, far above ours: the size is in its message
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(found[1]) / 1e6:,.0f} million pixels" if found else "larger than PIL allows"
        raise ImageError(
            f"{name} is {size}, more than the {max_pixels / 1e6:.0f} million accepted; please upload a smaller photo"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:  # SyntaxError: PIL's broken-header error
        raise ImageError(
            f"{name} could not be decoded as an image ({type(e).__name__}); please upload {', '.join(IMAGE_SUFFIXES)}"
        ) from None
    if w < 1 or h < 1:
        raise ImageError(f"{name} is {w}x{h} pixels, an empty image; please upload a photo")
    if w * h > max_pixels:
        raise ImageError(
            f"{name} is {w}x{h} pixels ({w * h / 1e6:,.0f} million), more than the {max_pixels / 1e6:.0f} million "
            "accepted; please upload a smaller photo"
        )
    if problem := LIMITS.aspect_problem(w, h):
        raise ImageError(f"{name} is {problem}; please upload a photo of a usual shape")
    return w, h


def read_image(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode an image file to uint8 (H, W, 3) RGB (grey and alpha images become 3-channel RGB).

    The header's width x height is checked first (``check_image``); nothing larger is decoded.
    """
    path = Path(path)
    _check_suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image: {path}")
    check_image(path, max_pixels)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f"{path.name!r} could not be decoded as an image ({', '.join(IMAGE_SUFFIXES)})")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write uint8 (H, W, 3) RGB to ``path``; the format follows the suffix (folders are created)."""
    path = Path(path)
    _check_suffix(path)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3) RGB, got {image.dtype} {tuple(image.shape)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1])):
        raise OSError(f"could not write {path}")
    return path

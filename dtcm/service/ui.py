"""What both UIs display, defined once: labels, help texts, accepted files, k choices and result sentences.

``app.py``, ``streamlit_app.py`` and ``pages/`` read these instead of typing their own; nothing here loads
a model or touches a file.
"""

from __future__ import annotations

from dtcm.checks import VIDEO_SUFFIXES  # what the uploaders accept
from dtcm.darkness import DARK_LUMA, LIT_LUMA, SEGMENTS, brightness, is_dark, light_level
from dtcm.jobs import ACTIVE as ACTIVE_JOB_STATES  # job states that move on by themselves

__all__ = [
    "ACTIVE_JOB_STATES",
    "COMPARE_HELP",
    "DARKNESS_HELP",
    "K_CHOICES",
    "K_HELP",
    "K_RANGE",
    "LIGHT_SCALE",
    "LOSS_NAMES",
    "METHOD_LABELS",
    "SHOWN_FRAMES",
    "VIDEO_SUFFIXES",
    "VIDEO_TYPES",
    "VIDEO_TYPES_TEXT",
    "darkness_label",
    "darkness_sentence",
    "not_sure_sentence",
]

K_RANGE = (1, 16)  # the k the service accepts (the k slider's range)
K_CHOICES = tuple(2**i for i in range(K_RANGE[1].bit_length()))  # 1, 2, 4, 8, 16: the paper's (Table IX)
K_HELP = (
    "Higher is faster: one curve estimate is shared by k frames (1 = every frame). The shipped models were trained "
    "with 4: 8 and 16 give nearly the same answers, 1 a few points fewer right."
)
COMPARE_HELP = (
    "How to read it: brightness is the enhanced frames' mean grey level (0 black, 255 white; the input's is "
    "the baseline). Flicker (L_STC) measures how much the enhancement changes differences between neighbouring "
    "pixels and frames: lower is steadier, but an enhancer that brightens little also changes little, so "
    "compare flicker between enhancers of similar brightness. 'None' is the input itself: 0 by definition."
)
METHOD_LABELS = {  # every enhancer of the Compare tab, in its order, as both UIs call it
    "none": "None (input)",
    "gic": "GIC (gamma)",
    "he": "HE (histogram eq.)",
    "clahe": "CLAHE",
    "msr": "MSR (retinex)",
    "zerodce-published": "Zero-DCE (published weights)",
    "zerodce": "Zero-DCE (trained here)",
    "dtcm": "DTCM",
}
LOSS_NAMES = {  # loss term -> what the fine-tune chart calls it (the equations are on the About tab)
    "total": "total",
    "ar": "recognition (L_AR)",
    "stc": "flicker (L_STC)",
    "sc": "spatial consistency",
    "tc": "temporal consistency",
    "dark": "enhancement (L_Dark)",
    "exp": "exposure",
    "col": "colour balance",
    "tva": "smoothness",
}
VIDEO_TYPES = tuple(s.lstrip(".") for s in VIDEO_SUFFIXES)  # the same, as upload widgets take them
VIDEO_TYPES_TEXT = f"{', '.join(VIDEO_TYPES[:-1])} or {VIDEO_TYPES[-1]}"  # "mp4, avi, mov, mkv or webm"
SHOWN_FRAMES = 8  # frames per gallery
LIGHT_SCALE = f"mean brightness, 0 black to 255 white: dark up to {DARK_LUMA:.0f}, lit from {LIT_LUMA:.0f}"
DARKNESS_HELP = f"The {LIGHT_SCALE} (over {SEGMENTS} frames spread over the clip)."


def darkness_label(dv: float) -> str:
    """The one word for a clip's light: "dark", "dim" or "lit" (``dtcm.darkness.light_level``)."""
    return light_level(dv)


def darkness_sentence(dv: float) -> str:
    """The clip's light in one sentence on the one scale, e.g. "dark: mean brightness 20 of 255 (...)"."""
    scale = f"mean brightness {brightness(dv):.0f} of 255 (dark up to {DARK_LUMA:.0f}, lit from {LIT_LUMA:.0f})"
    arid = "; as dark as the clips of ARID, the paper's dark-video benchmark" if is_dark(dv) else ""
    return f"{light_level(dv)}: {scale}{arid}"


def not_sure_sentence(verdict: dict) -> str | None:
    """What a UI says instead of a label when ``analyse``'s verdict is not sure; None when it is sure."""
    if verdict["sure"]:
        return None
    return f"Not sure what this is: {verdict['reason']}. The chart shows its guesses, not an answer."

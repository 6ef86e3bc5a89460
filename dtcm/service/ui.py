"""What both UIs display, defined once: labels, help texts, accepted files, k choices and result sentences.

``app.py``, ``streamlit_app.py`` and ``pages/`` read these instead of typing their own; nothing here loads
a model or touches a file.
"""

from __future__ import annotations

from dtcm.checks import VIDEO_SUFFIXES  # what the uploaders accept
from dtcm.darkness import SEGMENTS, TAU, is_dark
from dtcm.jobs import ACTIVE as ACTIVE_JOB_STATES  # job states that move on by themselves

__all__ = [
    "ACTIVE_JOB_STATES",
    "COMPARE_HELP",
    "DARKNESS_HELP",
    "K_CHOICES",
    "K_HELP",
    "K_RANGE",
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
DARKNESS_HELP = f"-1 black, 0 mid-grey, 1 white ({SEGMENTS} frames); ARID-dark below -{TAU:.2f}"


def darkness_label(dv: float) -> str:
    """One word for a darkness score: "dark" (ARID-dark), "dim" (below mid-grey) or "well lit"."""
    return "dark" if is_dark(dv) else ("dim" if dv < 0 else "well lit")


def darkness_sentence(dv: float) -> str:
    """The darkness verdict as a sentence, with the score and the threshold."""
    threshold = f"dark is below -{TAU:.2f}"
    if is_dark(dv):
        return f"dark: as dark as the clips of ARID, the dark-video benchmark (darkness {dv:.2f}; {threshold})"
    if dv < 0:
        return f"dim: darker than mid-grey but not ARID-dark (darkness {dv:.2f}; {threshold})"
    return f"well lit (darkness {dv:.2f}: brighter than mid-grey)"


def not_sure_sentence(verdict: dict) -> str | None:
    """What a UI says instead of a label when ``analyse``'s verdict is not sure; None when it is sure."""
    if verdict["sure"]:
        return None
    return f"Not sure what this is: {verdict['reason']}. The chart shows its guesses, not an answer."

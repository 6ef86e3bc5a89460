"""What the pipeline does to a clip that is not dark: enhance, soften or skip, from Dv and the enhancer's effect.

The darkness score Dv (SPEC A8, dtcm.darkness) gives the clip's mean luma, ``Sc (1 + Dv)``. A clip at or
below luma 60 ("dark" on the apps' one scale, ``dtcm.darkness.light_level``) is enhanced in full. Above that the enhancer's own effect is measured (the mean absolute luma
change it makes on the clip's frames) and held to a budget that shrinks from 100 grey levels at luma 60 to
9 at luma 90 and above (the promise is at most 10; rounding to 8 bits can add a fraction of a level). The
output is blended back towards the input, ``x + s (y - x)``, so the change is exactly ``s`` times the
enhancer's. A blend of two images stays in [0, 1] and keeps the curve's ordering of pixel values. When the
enhancer already changes a lit clip by less than the budget it is applied as is; when what would remain is
under one grey level, the clip is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dtcm.darkness import DARK_LUMA, LIT_LUMA, brightness, light_level

__all__ = ["Decision", "decide", "apply_decision", "luma_of_dv", "DARK_LUMA", "LIT_LUMA", "LIT_BUDGET"]

LIT_BUDGET = 9.0  # grey levels of mean luma change allowed on a lit clip: 1 under the 10 promised, for 8-bit rounding
DARK_BUDGET = 100.0  # budget at DARK_LUMA (no practical limit), falling linearly to LIT_BUDGET at LIT_LUMA
SKIP_BELOW = 1.0  # a remaining change under this many grey levels is not worth doing


@dataclass(frozen=True)
class Decision:
    action: str  # "enhance", "soften" or "skip"
    strength: float  # s in x + s (y - x): 1 enhance, 0 skip
    dv: float
    luma: float  # the clip's mean luma from Dv
    change: float  # the enhancer's own mean |luma change| on the clip, grey levels
    sentence: str  # what the UIs show

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("action", "strength", "dv", "luma", "change", "sentence")}


def luma_of_dv(dv: float) -> float:
    """Mean luma (0..255) of a clip with darkness score ``dv``."""
    return brightness(dv)


def budget(luma: float) -> float:
    """Grey levels of mean luma change the pipeline allows at this input luma (inf when dark)."""
    if luma <= DARK_LUMA:
        return float("inf")
    a = min(1.0, (luma - DARK_LUMA) / (LIT_LUMA - DARK_LUMA))
    return DARK_BUDGET + a * (LIT_BUDGET - DARK_BUDGET)


def decide(dv: float, change: float) -> Decision:
    """The decision for a clip of darkness ``dv`` on which the enhancer changes luma by ``change`` on average.

    Example:
        >>> decide(-0.1, 30.0).action  # a lit clip the enhancer would brighten by 30 grey levels
        'soften'
    """
    if not np.isfinite(dv) or not np.isfinite(change) or change < 0:
        raise ValueError(f"dv and change must be finite and change >= 0, got dv={dv!r}, change={change!r}")
    luma, allowed = luma_of_dv(dv), budget(luma_of_dv(dv))
    s = 1.0 if change <= allowed else allowed / change
    action = "skip" if s * change < SKIP_BELOW else ("enhance" if s == 1.0 else "soften")
    return Decision(action, 0.0 if action == "skip" else s, dv, luma, change, _sentence(action, s, dv, change))


def _sentence(action: str, s: float, dv: float, change: float) -> str:
    """The decision in plain words; the light word ("dark", "dim", "lit") is the darkness sentence's own."""
    level, allowed, done = light_level(dv), budget(luma_of_dv(dv)), f"+{s * change:.0f} grey levels"
    alone = f"the enhancer alone: +{change:.0f}"
    if action == "skip":
        head = "Already bright enough: left as it is" if level == "lit" else "Left as it is"
        return f"{head} (the enhancer would change it by under {SKIP_BELOW:.0f} grey level)."
    if level == "dark":
        return f"Enhanced in full ({done})."
    if level == "dim":
        if action == "enhance":
            return f"Enhanced in full ({done}; a dim clip may change by up to {allowed:.0f})."
        return f"Enhanced at {100 * s:.0f}% strength: {done}, the most a dim clip may change ({alone})."
    if action == "enhance":
        return f"Already bright enough: enhanced lightly ({done}; at most {allowed:.0f} on a lit clip)."
    return f"Already bright enough: enhanced lightly, at {100 * s:.0f}% strength ({done}, the most on a lit clip; {alone})."


def luma_change(x: np.ndarray, y: np.ndarray) -> float:
    """Mean |luma(y) - luma(x)| in grey levels, for uint8 or [0, 1] float arrays (..., 3)."""
    scale = 1.0 if x.dtype == np.uint8 else 255.0
    w = np.array([0.299, 0.587, 0.114], np.float32)
    return float(np.abs((y.astype(np.float32) - x.astype(np.float32)) @ w).mean() * scale)


def apply_decision(x: np.ndarray, y: np.ndarray, decision: Decision) -> np.ndarray:
    """``x + s (y - x)`` with the decision's strength, in x's dtype (uint8 rounded)."""
    if decision.strength >= 1.0:
        return y
    if decision.strength <= 0.0:
        return x
    out = x.astype(np.float32) + decision.strength * (y.astype(np.float32) - x.astype(np.float32))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8) if x.dtype == np.uint8 else out.astype(x.dtype)

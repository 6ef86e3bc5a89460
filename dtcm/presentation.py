"""What both UIs show the same way: labels, sentences, tables and form settings made from the service's data.

``app.py`` (Gradio), ``streamlit_app.py`` and ``pages/`` format through these functions, so a label or a
sentence changes in one place. Plain Python over :mod:`dtcm.service`'s public names: no torch, no UI library.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np

from dtcm import service
from dtcm.darkness import DARK_LUMA, LIT_LUMA, TAU
from dtcm.hub import MODEL_CARD_CITATION, is_stub_card  # no torch behind these
from dtcm.images import IMAGE_SUFFIXES

__all__ = [
    "ABOUT_MD",
    "AUTO_INIT",
    "AUTO_INIT_LABEL",
    "COMPARE_HEADERS",
    "DARKNESS_SCALE",
    "METHOD_SHORT",
    "PAPER_TABLE",
    "PHOTO_TYPES",
    "TRAINING_EQUATION",
    "TRAINING_LOSS",
    "VIDEO_TYPES",
    "accuracy_text",
    "analysis_summary",
    "check_upload",
    "clip_text",
    "compare_light",
    "compare_rows",
    "compare_summary",
    "darkness_sentence",
    "darkness_text",
    "darkness_word",
    "duration",
    "error_sentence",
    "finetune_form",
    "finetune_offer",
    "known_actions",
    "model_card_md",
    "model_text",
    "percent",
    "plain",
    "progress_text",
    "results_md",
    "spread",
    "status_summary",
    "status_text",
    "top1_text",
    "variant_label",
    "verdict_md",
]

log = logging.getLogger("dtcm.ui")

VIDEO_TYPES = tuple(s.lstrip(".") for s in service.VIDEO_SUFFIXES)  # what the clip uploaders accept
PHOTO_TYPES = tuple(s.lstrip(".") for s in IMAGE_SUFFIXES)  # what the photo uploaders accept
METHOD_SHORT = {  # an enhancer's caption under its frames (service.METHOD_LABELS names it in tables)
    "none": "input",
    "gic": "GIC",
    "he": "HE",
    "clahe": "CLAHE",
    "msr": "MSR",
    "zerodce-published": "Zero-DCE (published)",
    "zerodce": "Zero-DCE (ours)",
    "dtcm": "DTCM",
}
COMPARE_HEADERS = ("enhancer", "brightness (0-255)", "flicker L_STC", "top-1", "top-5", "seconds")
DARKNESS_SCALE = service.LIGHT_SCALE  # the one scale every darkness word and number is on
TRAINING_LOSS = "L_AR + alpha (W_STC L_STC + L_Dark)"  # Eq. 7 of the paper
TRAINING_EQUATION = f"L_total = {TRAINING_LOSS}"
AUTO_INIT = "auto"  # the service starts from the default variant when its backbone fits, else fresh
AUTO_INIT_LABEL = "auto (default variant)"
# The fine-tune forms' bounds are finetune_limits()'s; these two are only the widgets' own ends.
LR_MIN = 1e-7  # the number box's floor: the service takes any rate above 0 (up to finetune_limits()["lr_max"])
MAX_STEPS_MAX = 1_000_000  # the max-steps box's top (0 there means: the epochs decide)
FINETUNE_VERDICT_LABELS = {  # how a dropdown marks a fine-tune, by its comparison with the model it started from
    "better": "fine-tuned here, better than its start",
    "same": "fine-tuned here, no better than its start: not recommended",
    "worse": "fine-tuned here, worse than its start: not recommended",
    "unmeasured": "fine-tuned here, not measured against its start: not recommended",
}
SHIPPED_DATA = "synthetic test clips (DarkActions-synth, a seed no training run used)"  # the index's metrics
RESULTS_DOC = "docs/RESULTS.md"  # every measured number, real footage first, beside the paper's
RESULTS_LINK = (
    f"Accuracy on real footage and every other measured number, beside the paper's: `{RESULTS_DOC}` in the repository."
)
FINETUNE_PROMISE = (
    "When it ends, the result and the model it started from are measured on the same validation clips and the "
    "status says whether it is better. One that is not better is marked not recommended, and the default model "
    "stays as it is: a short run on a few clips can make a model worse."
)
GENERIC_ERROR = "Something went wrong on the server while {what}; please try again or try another clip."


# --------------------------------------------------------------------------------------- general
def error_sentence(exc: BaseException, what: str = "doing that", where: str | None = None) -> str:
    """What a UI says about a failure: a ``ServiceError``'s own sentence; anything else is logged (as a
    failure in ``where``, else while ``what``) and gets a generic sentence."""
    if isinstance(exc, service.ServiceError):
        return str(exc)
    log.error("unexpected failure %s", f"in {where}" if where else f"while {what}", exc_info=exc)
    return GENERIC_ERROR.format(what=what)


def check_upload(path: str, types: tuple[str, ...] = VIDEO_TYPES, what: str = "a video file") -> str:
    """``path`` when its suffix is one of ``types``; else a ``ServiceError`` naming the file and what is accepted."""
    if Path(path).suffix.lower().lstrip(".") not in types:
        raise service.ServiceError(f"{Path(path).name!r} is not {what} this app reads; upload {', '.join(types)}")
    return path


def plain(x):
    """numpy scalars and tuples -> JSON-able Python values (non-finite floats -> None)."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def spread(items: list, n: int) -> list:
    """``n`` items spread evenly over ``items``, first and last included (repeating when there are fewer)."""
    step = (len(items) - 1) / max(n - 1, 1)
    return [items[round(i * step)] for i in range(n)]


def percent(v) -> str:
    """A metric as a percentage with one decimal ("-" when missing); fractions and percentages both read."""
    if not isinstance(v, (int, float)):
        return "-"
    return f"{100 * v:.1f}" if v <= 1 else f"{v:.1f}"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------------------- variants
def variant_label(name: str, entry: dict) -> str:
    """A variant as a dropdown shows it: its name, trained W_STC and k, and whether it was fine-tuned here."""
    bits = []
    if entry.get("w_stc") is not None:
        bits.append(f"W_STC {float(entry['w_stc']):g}")
    if entry.get("k") is not None:
        bits.append(f"k {entry['k']}")
    if entry.get("runtime") or entry.get("verdict"):
        bits.append(FINETUNE_VERDICT_LABELS.get(entry.get("verdict"), "fine-tuned here"))
    return f"{name} ({', '.join(bits)})" if bits else name


def accuracy_text(metrics: dict | None) -> str | None:
    """A variant's accuracy and the data it was measured on, e.g. "Top-1 88.6%, Top-5 99.2% on 132 synthetic
    test clips (...)"; None without a number."""
    m = metrics or {}
    if not isinstance(m.get("top1"), (int, float)):
        return None
    top5 = f", Top-5 {percent(m['top5'])}%" if isinstance(m.get("top5"), (int, float)) else ""
    n = f"{m['n']} " if m.get("n") else ""
    return f"Top-1 {percent(m['top1'])}%{top5} on {n}{m.get('data') or SHIPPED_DATA}"


def known_actions(names: list[str]) -> str:
    return f"The model knows {len(names)} actions: {', '.join(names)}. Anything else gets the nearest of them."


def finetune_form() -> dict[str, dict]:
    """Every fine-tune field's start value and bounds, from the service's defaults and this machine's limits."""
    d, lim = service.finetune_defaults(), service.finetune_limits()
    return {
        "backbone": {"value": d["backbone"], "choices": list(lim["backbones"])},
        "alpha": {"value": d["alpha"], "minimum": 0.0, "maximum": lim["alpha_max"], "step": 0.05},
        "w_stc": {"value": d["w_stc"], "minimum": 0.0, "maximum": lim["w_stc_max"], "step": 0.5},
        "k": {
            "value": d["k"],
            "choices": list(service.K_CHOICES),
            "minimum": lim["k_range"][0],
            "maximum": lim["k_range"][1],
        },
        "epochs": {"value": d["epochs"], "minimum": 1, "maximum": lim["epochs_max"], "step": 1},
        "lr": {"value": d["lr"], "minimum": LR_MIN, "maximum": lim["lr_max"], "step": 1e-5},
        "batch_size": {"value": d["batch_size"], "minimum": 1, "maximum": lim["batch_max"], "step": 1},
        "max_steps": {"value": 0, "minimum": 0, "maximum": MAX_STEPS_MAX, "step": 1},
    }


# --------------------------------------------------------------------------------------- analyse
def darkness_sentence(darkness: dict) -> str:
    return f"{_capitalised(darkness['verdict'])}."


def darkness_text(r: dict) -> str:
    """The darkness verdict and what the pipeline did about it, as two sentences."""
    return f"{darkness_sentence(r['darkness'])} {r['enhancement']['sentence']}"


def darkness_word(darkness: dict) -> str:
    """The clip's light in one word: "dark", "dim" or "lit" (the service's sentence starts with it)."""
    return darkness.get("light") or re.split(r"[:(]", darkness["verdict"], maxsplit=1)[0].strip()


def model_text(r: dict, entry: dict) -> str:
    wstc = f"W_STC {float(entry['w_stc']):g}, " if entry.get("w_stc") is not None else ""
    return f"{r['variant']} ({wstc}k = {r['k']})"


def clip_text(r: dict) -> str:
    """The clip's facts and which of its frames were recognised."""
    info = r["info"]
    return (
        f"{info['frames']} frames, {info['width']}x{info['height']} at {info['fps']:g} fps. " + r["window"]["sentence"]
    )


def verdict_md(r: dict) -> str:
    """The answer above the chart: the action and its probability, or why the model is not sure."""
    not_sure = service.not_sure_sentence(r["verdict"])
    return f"**{not_sure}**" if not_sure else f"**Recognised: {r['top5'][0][0]}** ({r['top5'][0][1]:.0%})."


def _top5_rows(top5) -> list[dict]:
    return [{"label": label, "prob": p} for label, p in top5]


def analysis_summary(r: dict) -> dict:
    """The analysis without its images, JSON-able (what the Gradio /analyse endpoint returns last)."""
    verdict = {"sure": r["verdict"]["sure"], "reason": r["verdict"]["reason"]}
    first = {key: r[key] for key in ("variant", "k", "darkness", "enhancement")}
    rest = {key: r[key] for key in ("stc", "info", "window", "timings")}
    return plain({**first, "top5": _top5_rows(r["top5"]), "verdict": verdict, **rest})


# --------------------------------------------------------------------------------------- compare
def compare_rows(result: dict) -> list[list]:
    """One row per enhancer under ``COMPARE_HEADERS``; an enhancer that is missing says why in its row."""
    rows = []
    for m in result["_order"]:
        res, name = result[m], service.METHOD_LABELS.get(m, m)
        if "error" in res:
            rows.append([name, None, None, "-", res["error"], None])
            continue
        top5 = ", ".join(f"{label} {p:.0%}" for label, p in res["top5"])
        luma, stc, seconds = round(float(res["luma"]), 1), round(float(res["stc"]), 5), round(float(res["seconds"]), 3)
        rows.append([name, luma, stc, top1_text(res), top5, seconds])
    return rows


def top1_text(res: dict) -> str:
    """One enhancer's answer under Recognise's rule: "Sit (93%)", or "not sure (best guess Sit, 49%)"."""
    (top1, p1), verdict = res["top5"][0], res.get("verdict") or {"sure": True}
    return f"{top1} ({p1:.0%})" if verdict["sure"] else f"not sure (best guess {top1}, {p1:.0%})"


def compare_light(result: dict) -> str:
    """The compared input's light, in the words and on the scale of Recognise."""
    dark = result.get("_darkness")
    return f"The input is {dark['verdict']}." if dark else ""


def compare_summary(result: dict) -> dict:
    """The comparison without its images, JSON-able (what the Gradio /compare endpoint returns last)."""
    out = {}
    for m in result["_order"]:
        res = result[m]
        if "error" in res:
            out[m] = {"error": res["error"]}
        else:
            keys = ("stc", "luma", "top5", "seconds")
            out[m] = {key: _top5_rows(res[key]) if key == "top5" else res[key] for key in keys}
            if res.get("verdict"):
                out[m]["verdict"] = {"sure": res["verdict"]["sure"], "reason": res["verdict"]["reason"]}
    if result.get("_darkness"):
        out["input"] = {key: v for key, v in result["_darkness"].items()}
    return plain(out)


# ------------------------------------------------------------------------------------- fine-tune
def progress_text(progress: dict) -> str:
    text = f"step {progress['step']} of {progress['total_steps']}"
    if progress.get("eta_s") is not None:
        text += f", about {duration(progress['eta_s'])} left"
    return text


def status_text(status: dict) -> str:
    """A fine-tune's state, last step, progress, validation score and resulting variant, one line each."""
    metrics = status.get("metrics") or []
    text = f"{status.get('state', 'idle')}: {status.get('message') or ''}".strip().rstrip(":")
    if metrics:
        last = metrics[-1]
        bits = [f"step {last.get('step')}", f"epoch {last.get('epoch')}"]
        bits += [f"{key} {last[key]:.4g}" for key in ("total", "acc") if isinstance(last.get(key), (int, float))]
        text += "\nlast: " + ", ".join(bits)
    if status.get("progress"):
        text += "\n" + progress_text(status["progress"])
    epochs = [e for e in status.get("epochs") or [] if e.get("val_top1") is not None]
    if epochs:
        e = epochs[-1]
        text += f"\nvalidation after epoch {e.get('epoch')}: Top-1 {e['val_top1']:.0%}"
        if e.get("val_n"):
            text += f" of {e['val_n']} clips"
    if status.get("verdict"):
        text += "\n" + status["verdict"]
    if status.get("saved_as"):
        text += f"\nsaved as {status['saved_as']} (selectable in Recognise and Compare)"
    elif status.get("variant"):
        text += f"\nnew variant: {status['variant']} ({finetune_offer(status)})"
    return text


def finetune_offer(status: dict) -> str:
    """How a finished fine-tune is offered: selectable, and recommended only when it beat its start."""
    verdict = (status.get("check") or {}).get("verdict")
    if verdict in ("same", "worse", None) and status.get("check"):
        return "selectable in Recognise and Compare, but not recommended; the default variant is unchanged"
    return "selectable in Recognise and Compare"


def status_summary(status: dict) -> dict:
    """The status without its (long) per-step history: the last step's metrics instead."""
    metrics = status.get("metrics") or []
    out = {k: v for k, v in status.items() if k != "metrics"}
    return plain({**out, "steps_logged": len(metrics), "last": metrics[-1] if metrics else None})


# ----------------------------------------------------------------------------------------- about
def _demoted(markdown: str) -> str:
    """Headings moved below the page's own (``#`` -> ``####``)."""
    return re.sub(r"^#(?=#* )", "####", markdown, flags=re.M)


def model_card_md(variant: str | None, entry: dict) -> str:
    """The model card (README.md in the variant's folder) as Markdown under a heading of its own."""
    card = Path(entry["path"]) / "README.md" if entry.get("path") else None
    title = f"### Model card: {variant}\n" if variant else "### Model card\n"
    if card is None or is_stub_card(card):
        return title + ("This variant has no model card." if variant else "No model weights are installed.")
    text = re.sub(r"\A---\n.*?\n---\n", "", card.read_text(encoding="utf-8"), count=1, flags=re.S)
    return title + _demoted(text)


def results_md(variants: dict[str, dict], results_file: Path | None = None) -> str:
    """Our numbers: each classifier's accuracy and the data it was measured on, then where the rest is
    (``results_file`` is linked, never copied in)."""
    rows = ["### Our numbers", "| Our variant | W_STC | k | Top-1 | Top-5 | measured on |", "|---|---|---|---|---|---|"]
    for name, e in variants.items():
        m = e.get("metrics") or {}
        if not isinstance(m.get("top1"), (int, float)):
            continue
        data = f"{m['n']} " * bool(m.get("n")) + (m.get("data") or SHIPPED_DATA)
        rows.append(
            f"| {name} | {e.get('w_stc', '-')} | {e.get('k', '-')} | {percent(m['top1'])} | {percent(m.get('top5'))} | {data} |"
        )
    return "\n".join(rows) + "\n\n" + RESULTS_LINK


PAPER_TABLE = """| Result (paper, ARID, 64x112x112, Kinetics init) | Top-1 |
|---|---|
| 3D-ResNeXt-101 alone | 86.36 |
| DTCM (3D-ResNeXt-101 + LightDCE, one-stage L_total, k = 4) | **96.36** |
| DTCM, W_STC = 0 (Table VIII) | 87.1 |
| DTCM, W_STC = 4 (Table VIII) | 97.1 |

LightDCE: about 23K parameters; DTCM in total 47.57M parameters and 43.24 GFLOPs at 64x112x112, k = 4."""

ABOUT_MD = f"""
### How it works
DTCM (Tu et al., IEEE TIP 2023) puts a light enhancement network in front of a 3D CNN and trains both
together: LightDCE estimates 8 Zero-DCE curves per pixel (x <- x + r x (1 - x)) on the **keyframe** of every
group of *k* frames and applies them to the whole group (curve estimation costs 1/k), and the loss,
{TRAINING_EQUATION}, adds spatial and temporal consistency (L_STC, weighted by W_STC: lower flicker) to the
recognition loss. Probabilities are calibrated; when the best guess is too weak, or the clip is unlike the
training data, the app says **not sure** instead of naming an action.

### How dark is a clip
One scale everywhere: the mean brightness of 8 frames spread over the clip, 0 black to 255 white. Up to
{DARK_LUMA:.0f} a clip is **dark** and enhanced in full; from {LIT_LUMA:.0f} it is **lit**, already bright
enough, and enhanced lightly (at most about 9 grey levels); between, **dim**. The paper's own threshold is
stricter: its darkness score Dv = brightness / 112 - 1 must be below -{TAU} (brightness about 14), the mean of
ARID, the dark-video benchmark; clips that dark are marked "as dark as the clips of ARID", and `dtcm darkness`
reports that test as `arid_dark`.

### What the weights learned from
The classifiers were trained here on **DarkActions-synth** (rendered figures doing ARID's 11 actions, filmed
by a low-light camera model) and then on **real clips of people from two places**; no real dark action
dataset can be downloaded here. The accuracies the apps show say what they were measured on: the index's
are on synthetic test clips. {RESULTS_LINK}

### Citation
```bibtex
{MODEL_CARD_CITATION}
```
"""

"""Honest confidence: temperature scaling, expected calibration error and a "not sure" verdict.

A model's logits never change. What changes is what is shown: the probabilities are
``softmax(logits / temperature)`` with the temperature fitted on held-out clips (Guo et al. 2017), and an
answer becomes "not sure" when

* the top calibrated probability is below ``config.not_sure_below`` (chosen on real footage so that few
  answers shown as confident are wrong), or
* the clip looks unlike the training data: the energy score ``logsumexp(logits)`` of the raw logits (Liu et
  al. 2020; high on familiar inputs) is below ``config.min_energy``, set so that 95% of held-out synthetic
  clips pass.

The math is pure numpy on (N, C) logits; :func:`collect_logits` runs a model over a split, and
``dtcm calibrate`` fits and writes the three config fields.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

__all__ = [
    "calibrate",
    "calibrate_logits",
    "collect_logits",
    "ece",
    "ece_floor",
    "energy",
    "fit_temperature",
    "min_energy_for",
    "nll",
    "not_sure_below_for",
    "measure",
    "softmax",
    "verdict",
    "write_calibration",
]

ECE_BINS = 15  # equal-width confidence bins (Guo et al.)
FAMILIAR_SHARE = 0.95  # min_energy lets this share of held-out training-like clips through
MAX_WRONG = 0.1  # at most 1 in 10 answers shown at p >= CONFIDENT may be wrong
CONFIDENT = 0.9


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``softmax(logits / temperature)`` of (N, C) or (C,) logits, in float64."""
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def energy(logits) -> np.ndarray:
    """The energy score ``logsumexp(logits)`` per row of (N, C) logits: higher means more familiar."""
    z = np.asarray(logits, np.float64)
    m = z.max(-1)
    return m + np.log(np.exp(z - m[..., None]).sum(-1))


def nll(logits, labels, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, np.float64) / temperature
    labels = np.asarray(labels)
    return float(np.mean(energy(z) - z[np.arange(len(z)), labels]))


def fit_temperature(logits, labels, bounds: tuple[float, float] = (0.05, 100.0)) -> float:
    """The temperature that minimises the NLL of ``labels`` (golden-section search on log T).

    The NLL is convex in 1 / T, so it has one minimum on ``bounds``; a minimum at a bound returns the bound.

    Args:
        logits: (N, C) raw logits.
        labels: (N,) int class indices.
        bounds: the range searched.

    Returns:
        The temperature T > 0.

    Example:
        >>> round(fit_temperature([[2.0, 0.0]] * 4, [0, 0, 0, 1]), 6)  # sigmoid(2 / T) = 3/4: T = 2 / ln 3
        1.820478
    """
    logits, labels = _check(logits, labels)
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    while hi - lo > 1e-9:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(logits, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(logits, labels, math.exp(b))
    return math.exp((lo + hi) / 2)


def ece(probs, labels, bins: int = ECE_BINS) -> float:
    """Expected calibration error: sum over equal-width confidence bins of |accuracy - confidence| x share.

    Args:
        probs: (N, C) probabilities.
        labels: (N,) int class indices.
        bins: number of bins on [0, 1]; a confidence of exactly 1 falls in the last.

    Example:
        >>> ece([[0.9, 0.1], [0.9, 0.1]], [0, 1])  # confidence 0.9, accuracy 0.5
        0.4
    """
    probs, labels = _check(probs, labels)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    conf, correct = probs.max(1), probs.argmax(1) == labels
    which = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(total)


def min_energy_for(logits, share: float = FAMILIAR_SHARE) -> float:
    """The energy threshold that ``share`` of these (training-like) clips reach: their (1 - share) quantile."""
    return float(np.quantile(energy(logits), 1 - share))


def not_sure_below_for(
    confidence, correct, max_wrong: float = MAX_WRONG, confident: float = CONFIDENT, every_answer: bool = True
) -> float:
    """The lowest threshold on the shown probability after which at most ``max_wrong`` of the answers left at
    p >= ``confident`` are wrong and, with ``every_answer``, of all the answers left.

    Candidates are 0 and the confidences themselves; for each, the answers kept are those at or above it
    (answers already judged unfamiliar should be left out by the caller).

    Args:
        confidence: (N,) top calibrated probability per clip.
        correct: (N,) bool, whether the top class is right.
        max_wrong: the error rate allowed among the answers kept.
        confident: the probability from which an answer counts as confident.
        every_answer: hold every answer given to ``max_wrong``, not only the confident ones.

    Returns:
        The threshold; just above every confidence (all "not sure") when no lower one qualifies.

    Example:
        >>> not_sure_below_for([0.95, 0.6, 0.3], [True, True, False])
        0.6
    """
    conf, right = np.asarray(confidence, np.float64), np.asarray(correct, bool)
    for t in np.concatenate([[0.0], np.sort(conf)]):
        kept = conf >= t
        sure_ok = not every_answer or not kept.any() or 1 - right[kept].mean() <= max_wrong
        high = kept & (conf >= confident)
        high_ok = not high.any() or 1 - right[high].mean() <= max_wrong
        if sure_ok and high_ok:
            return float(t)
    return float(min(1.0, np.nextafter(conf.max(), 2.0)))


def verdict(logits, config) -> dict:
    """Whether an answer can be given for one clip, from its raw logits (C,) and the model's config.

    Returns:
        ``{"sure": bool, "reason": str, "top": (label, calibrated probability), "energy": float}``; the
        reason is one plain sentence.
    """
    z = np.asarray(logits, np.float64).reshape(-1)
    p = softmax(z, config.temperature)
    i = int(p.argmax())
    label, top = config.class_names[i], float(p[i])
    e = float(energy(z))
    if config.min_energy is not None and e < config.min_energy:
        reason = (
            f"this clip looks unlike the clips the model was trained on (its energy score {e:.2f} is "
            f"below {config.min_energy:.2f}), so its guesses mean little"
        )
        return {"sure": False, "reason": reason, "top": (label, top), "energy": e}
    if top < config.not_sure_below:
        reason = (
            f"the best guess, {label}, has only {top:.0%} probability; below {config.not_sure_below:.0%} "
            "this model is wrong too often"
        )
        return {"sure": False, "reason": reason, "top": (label, top), "energy": e}
    return {"sure": True, "reason": f"{label} at {top:.0%} probability", "top": (label, top), "energy": e}


# ------------------------------------------------------------------------------------------ models
def collect_logits(model, data, batch_size: int = 4, k: int | None = None) -> dict:
    """Raw logits of every clip of a split (1-clip centre crop, as ``dtcm.evaluate``).

    Returns:
        ``{"logits": (N, C) float64, "labels": (N,) int64 in model order, "paths": [str]}``; unreadable clips
        are left out.
    """
    import torch

    from dtcm.data import collate_clips
    from dtcm.evaluate import _dataset, _label_map

    dataset = _dataset(data, model.config, split=1)
    label_map = _label_map(tuple(dataset.class_names), tuple(model.config.class_names), str(data))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate_clips)
    device = next(model.parameters()).device
    logits, labels, paths = [], [], []
    model.eval()
    for batch in loader:
        if len(batch["label"]):
            with torch.inference_mode():
                logits.append(model(batch["video"].to(device), k=k).float().cpu().numpy())
            labels.append(label_map[batch["label"]].numpy())
            paths += batch["path"]
    if not logits:
        raise ValueError(f"none of the {len(dataset)} clips of {data} could be read")
    return {"logits": np.concatenate(logits).astype(np.float64), "labels": np.concatenate(labels), "paths": paths}


def write_calibration(folder: str | Path, temperature: float, not_sure_below: float, min_energy: float | None) -> Path:
    """Set the three calibration fields in a model folder's ``config.json`` (validated); nothing else changes."""
    from dtcm.config import DTCMConfig

    path = Path(folder) / "config.json"
    d = json.loads(path.read_text())
    d |= {"temperature": temperature, "not_sure_below": not_sure_below, "min_energy": min_energy}
    DTCMConfig.from_dict(d).save(path)
    return path


def calibrate(model, synthetic, real: dict, batch_size: int = 4, also: dict | None = None) -> dict:
    """Fit a model's temperature and thresholds on held-out clips and measure what they change.

    Runs the model over every split, then :func:`calibrate_logits`.

    Args:
        model: a DTCM model.
        synthetic: a held-out synthetic split (list file or folder), clips the model was not trained on.
        real: ``{name: split}`` of real footage, e.g. ``{"filmed": ..., "darkened": ...}``.
        batch_size: clips per forward pass.
        also: ``{name: split}`` measured with the fitted fields but used for nothing (e.g. a second synthetic seed).

    Returns:
        :func:`calibrate_logits`'s report.
    """
    sets = {"synthetic": collect_logits(model, synthetic, batch_size)}
    sets |= {name: collect_logits(model, split, batch_size) for name, split in real.items()}
    sets |= {name: collect_logits(model, split, batch_size) for name, split in (also or {}).items()}
    return calibrate_logits(sets, tuple(real))


def calibrate_logits(sets: dict, real: tuple[str, ...]) -> dict:
    """The temperature and thresholds from held-out logits, and what they change on every set.

    The temperature minimises the NLL of the synthetic held-out clips alone. Fitting it to the real clips too
    let the mistakes on the two real sources never trained on (a dark yard; a Jump clip called Push at
    p = 0.99) set it: T rose from 1.0 without them to about 1.7 and left every other answer underconfident (ECE
    after 0.11-0.17 on either kind of clip against 0.06-0.10 before). ``min_energy`` lets 95% of the synthetic
    clips through; ``not_sure_below`` is :func:`not_sure_below_for` on the real clips that pass, so the real
    clips are what the threshold is chosen on, and the temperature never sees them.

    Args:
        sets: ``{name: {"logits": (N, C), "labels": (N,)}}`` with a ``"synthetic"`` entry and the ``real`` ones;
            any other entry is only measured.
        real: the names of the real sets (pooled into a set ``"real"``).

    Returns:
        ``{"temperature", "not_sure_below", "min_energy", "confident_only_not_sure_below", "fitted_on",
        "sets": {name: metrics}}``; metrics are :func:`measure`'s before, after and after with the threshold
        that holds only the p >= 0.9 answers to 1 in 10, plus ``ece_floor``: what a perfectly calibrated model
        with the same confidences would measure on this many clips (:func:`ece_floor`).
    """
    sets = dict(sets)
    if "synthetic" not in sets or not real or any(name not in sets for name in real):
        raise ValueError(f"need a 'synthetic' set and the real sets {list(real)}, got {list(sets)}")
    sets["real"] = {k: np.concatenate([sets[name][k] for name in real]) for k in ("logits", "labels")}
    t = fit_temperature(sets["synthetic"]["logits"], sets["synthetic"]["labels"])
    min_e = min_energy_for(sets["synthetic"]["logits"])
    z, y = sets["real"]["logits"], sets["real"]["labels"]
    familiar, p = energy(z) >= min_e, softmax(z, t)
    conf, right = p.max(1)[familiar], (p.argmax(1) == y)[familiar]
    threshold = not_sure_below_for(conf, right)
    confident_only = not_sure_below_for(conf, right, every_answer=False)
    fields = {"temperature": t, "not_sure_below": threshold, "min_energy": min_e}
    report = fields | {"confident_only_not_sure_below": confident_only, "fitted_on": "synthetic", "sets": {}}
    for name, s in sets.items():
        report["sets"][name] = {
            "before": measure(s["logits"], s["labels"]) | {"ece_floor": ece_floor(softmax(s["logits"]))},
            "after": measure(s["logits"], s["labels"], **fields) | {"ece_floor": ece_floor(softmax(s["logits"], t))},
            "after_confident_only": measure(s["logits"], s["labels"], t, confident_only, min_e),
        }
    return report


def ece_floor(probs, draws: int = 200, seed: int = 0, bins: int = ECE_BINS) -> float:
    """The ECE a perfectly calibrated model with these confidences would measure on this many clips, on average.

    Each draw makes the top class right with probability equal to its confidence and measures :func:`ece`;
    the mean is the part of a measured ECE that sampling alone gives (about 0.1 for 60 clips), so a figure near
    it is as good as that many clips can show.

    Example:
        >>> ece_floor([[1.0, 0.0]] * 50)  # certain and always right: no sampling error
        0.0
    """
    probs = np.asarray(probs, np.float64)
    rng = np.random.default_rng(seed)
    top, conf = probs.argmax(1), probs.max(1)
    other = (top + 1) % probs.shape[1]
    total = 0.0
    for _ in range(draws):
        labels = np.where(rng.random(len(conf)) < conf, top, other)
        total += ece(probs, labels, bins)
    return total / draws


def measure(logits, labels, temperature: float = 1.0, not_sure_below: float = 0.0, min_energy: float | None = None):
    """Top-1, Top-5, ECE, the share of "not sure" answers and how often the answers given at p >= 0.9 are wrong.

    Returns:
        ``{"n", "top1", "top5", "ece", "not_sure", "answered_top1", "confident", "wrong_confident"}``:
        ``answered_top1`` is the Top-1 of the clips not called "not sure" (None without any), ``confident``
        counts the answers given at p >= 0.9 and ``wrong_confident`` is the share of them that is wrong (None
        without any).
    """
    logits, labels = _check(logits, labels)
    p = softmax(logits, temperature)
    conf, right = p.max(1), p.argmax(1) == labels
    unsure = conf < not_sure_below
    if min_energy is not None:
        unsure |= energy(logits) < min_energy
    confident = ~unsure & (conf >= CONFIDENT)
    top5 = (np.argsort(-logits, 1)[:, :5] == labels[:, None]).any(1)
    return {
        "n": len(labels),
        "top1": float(right.mean()),
        "top5": float(top5.mean()),
        "ece": ece(p, labels),
        "not_sure": float(unsure.mean()),
        "answered_top1": float(right[~unsure].mean()) if (~unsure).any() else None,
        "confident": int(confident.sum()),
        "wrong_confident": float(1 - right[confident].mean()) if confident.any() else None,
    }


def _check(values, labels) -> tuple[np.ndarray, np.ndarray]:
    values, labels = np.asarray(values, np.float64), np.asarray(labels)
    if values.ndim != 2 or len(values) != len(labels) or len(values) == 0:
        raise ValueError(f"need (N, C) values and N labels with N >= 1, got {values.shape} and {labels.shape}")
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= values.shape[1]:
        raise ValueError(f"labels must be class indices in 0..{values.shape[1] - 1}, got {labels[:5].tolist()}")
    return values, labels

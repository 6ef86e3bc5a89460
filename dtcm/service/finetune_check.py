"""Whether a fine-tune made things better: its start model and its result, measured on the same clips.

``measure`` runs in the training worker once training has ended (``dtcm.jobs``); ``verdict_sentence`` says
the outcome in plain words for the job's status and both apps. A result that is not better than its start
is never recommended: the default variant stays what it was.
"""

from __future__ import annotations

__all__ = ["RECOMMENDED", "measure", "verdict_sentence"]

RECOMMENDED = ("better",)  # the verdicts whose result the apps offer as an improvement


def _top(result: dict) -> dict:
    return {"top1": result["top1"], "top5": result["top5"], "n": result["n"]}


def measure(args: dict, summary: dict, start_name: str | None = None) -> dict:
    """Top-1 and Top-5 of the start model (``args["init"]``) and of the result (``summary["final"]``) on the
    run's validation clips: one centre crop per clip, the run's k, the same clips for both.

    Returns:
        ``{"verdict": "better" | "worse" | "same" | "fresh", "start_name", "start": {"top1", "top5", "n"} |
        None, "result": {...}, "n"}``; "fresh" when the run started from fresh weights (nothing to compare).
        Top-1 decides; Top-5 breaks a tie.
    """
    from dtcm.evaluate import evaluate
    from dtcm.hub import resolve_model
    from dtcm.training.args import DEFAULTS

    data, k = args.get("val_data") or args["data"], int(args["k"])
    split, batch = args.get("split") or DEFAULTS["split"], int(args.get("batch_size") or DEFAULTS["batch_size"])

    def score(folder: str) -> dict:
        return _top(evaluate(resolve_model(folder).eval(), data, batch_size=batch, k=k, split=split))

    result = score(summary["final"])
    out = {"verdict": "fresh", "start_name": start_name, "start": None, "result": result, "n": result["n"]}
    if args.get("init"):
        start = score(args["init"])
        out["start"] = start
        now, before = (result["top1"], result["top5"]), (start["top1"], start["top5"])
        out["verdict"] = "better" if now > before else ("worse" if now < before else "same")
    return out


def verdict_sentence(check: dict | None) -> str | None:
    """The comparison in plain words, e.g. "Worse than the model it started from (dtcm-x): Top-1 9% against
    45% on the same 11 validation clips. It is not recommended: keep using dtcm-x." None before it exists."""
    if not check:
        return None
    verdict, start = check.get("verdict"), check.get("start_name") or "the start model"
    if verdict is None:
        return f"The result could not be measured against the model it started from ({check.get('error')})."
    result, n = check["result"], check["n"]
    if verdict == "fresh":
        return f"Trained from fresh weights, so there is no start model to compare with: Top-1 {result['top1']:.0%} on {n} validation clips."
    scores = f"Top-1 {result['top1']:.0%} against {check['start']['top1']:.0%} on the same {n} validation clips"
    if verdict == "better":
        return f"Better than the model it started from ({start}): {scores}."
    head = "Worse than" if verdict == "worse" else "No better than"
    return f"{head} the model it started from ({start}): {scores}. It is not recommended: keep using {start}."

"""A fine-tune is measured against the model it started from, on the same validation clips, and says so.

A real job of a tiny model in a worker process (the ``server`` fixture of ``test_security``: a tiny default
variant, a two-class set, every folder under tmp); the sentences and labels are checked without a model. The
curve across Stop and Resume: ``test_security.test_resume_continues_the_same_run_at_its_step``.
"""

from __future__ import annotations

import json

import pytest
from test_security import _start, _wait, server  # noqa: F401 (a fixture)

from dtcm import presentation as ui
from dtcm import service
from dtcm.service.finetune_check import verdict_sentence

OWNER = "owner-verdict-0123456789ab"


def _check(verdict: str, now: float, before: float) -> dict:
    return {
        "verdict": verdict,
        "start_name": "dtcm-default",
        "start": {"top1": before, "top5": 1.0, "n": 11},
        "result": {"top1": now, "top5": 1.0, "n": 11},
        "n": 11,
    }


def test_a_finetune_is_measured_against_its_start_on_the_same_clips(server):  # noqa: F811
    _start(OWNER, max_steps=2)
    done = _wait(OWNER)
    assert done["state"] == "finished", done["message"]
    check = done["check"]
    assert check["start_name"] == "tiny" and done["settings"]["init"] == "tiny"  # the default variant it began from
    assert check["start"]["n"] == check["result"]["n"] == check["n"] >= 1
    assert check["verdict"] in ("better", "worse", "same")
    assert done["verdict"] == verdict_sentence(check) and "the model it started from (tiny)" in done["verdict"]
    entry = service.list_variants(owner=OWNER)[done["variant"]]
    assert entry["verdict"] == check["verdict"] and "validation clips" in entry["metrics"]["data"]
    assert service.default_variant() == "tiny"  # a fine-tune is never made the default
    text = json.dumps(done) + ui.status_text(done)
    assert str(server) not in text and "/runs/" not in text  # no server path anywhere

    assert service.save_finetuned("ux-test", owner=OWNER) == "ux-test"  # listed once: as saved, not twice
    names = list(service.list_variants(owner=OWNER))
    assert "ux-test" in names and done["variant"] not in names
    assert "saved as ux-test" in ui.status_text(service.finetune_status(OWNER))


@pytest.mark.parametrize(
    ("verdict", "now", "before", "words"),
    [
        ("worse", 0.09, 0.45, "Worse than the model it started from (dtcm-default): Top-1 9% against 45%"),
        ("same", 0.45, 0.45, "No better than the model it started from"),
        ("better", 0.64, 0.45, "Better than the model it started from (dtcm-default): Top-1 64% against 45%"),
    ],
)
def test_the_verdict_is_said_in_plain_words_and_a_worse_one_is_not_recommended(verdict, now, before, words):
    check = _check(verdict, now, before)
    sentence = verdict_sentence(check)
    assert sentence.startswith(words) and "on the same 11 validation clips" in sentence
    status = {"state": "finished", "message": "finished", "check": check, "verdict": sentence, "variant": "ft-1"}
    text = ui.status_text(status)
    label = ui.variant_label("ft-1", {"runtime": True, "k": 4, "verdict": verdict})
    if verdict == "better":
        assert "not recommended" not in text and "better than its start" in label
    else:
        assert "not recommended" in sentence and "default variant is unchanged" in text
        assert "not recommended" in label

"""The Fine-tune tab's handlers: start, watch, stop, resume, save and push this visitor's job.

The job lives in the server (``dtcm.service``), so it survives page reloads; the visitor's key is kept in
the session and the browser. Every handler that changes the job returns the poll outputs: the tab's status
components and, when the variants changed, the Recognise and Compare variant dropdowns.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from dtcm import presentation as ui
from dtcm import service
from dtcm.service.server import writes_off_reason
from dtcm.ui_gradio import layout
from dtcm.ui_gradio.errors import human_errors

__all__ = ["FinetuneHandlers"]


def _check_finetune_allowed() -> None:
    if not service.writes_enabled():
        raise service.ServiceError(f"fine-tuning is switched off on this server ({writes_off_reason()})")


def _owner(known: dict | None) -> tuple[str, dict]:
    """This visitor's job key (kept in the session and the browser) and the session memory holding it."""
    known = dict(known or {})
    if not known.get("owner"):
        known["owner"] = service.new_owner_key()
    return known["owner"], known


def _variants(owner: str | None) -> dict[str, dict]:
    """The variants this visitor may choose: the shipped and saved ones and their own fine-tunes."""
    with service.as_visitor(owner):
        return layout.variants()


class FinetuneHandlers:
    """The handlers over the components of the fine-tune tab (``ft``) and the dropdowns of ``rec`` and ``cmp``."""

    def __init__(self, rec: SimpleNamespace, cmp: SimpleNamespace, ft: SimpleNamespace):
        self.rec, self.cmp, self.ft = rec, cmp, ft

    def _variant_dropdowns(self, variants: dict) -> dict:
        """Recognise's, Compare's and Start-from's dropdowns with every variant there is now."""
        choices = layout.variant_choices(variants)
        return {
            self.rec.variant: gr.Dropdown(choices=choices),
            self.cmp.variant: gr.Dropdown(choices=choices),
            self.ft.init: gr.Dropdown(choices=[(ui.AUTO_INIT_LABEL, ui.AUTO_INIT), *choices]),
        }

    def remember_owner(self, stored, known) -> dict:
        """At page load: take the job key the browser kept (a reload still owns its job) or make one."""
        known = dict(known or {})
        known["owner"] = stored if isinstance(stored, str) and len(stored) >= 16 else known.get("owner")
        owner, known = _owner(known)
        return {self.ft.known: known, self.ft.owner: owner}

    def _poll_outputs(self, status: dict, known: dict | None) -> dict:
        """What every fine-tune handler returns.

        Returns:
            {component: value} for the status text, the loss figure (skipped when no new step arrived), the
            status dict for JSON, the timer (active while the job runs), the three variant dropdowns (skipped
            unless the variants changed) and this session's memory of what it has shown.
        """
        known = dict(known or {})
        n = len(status.get("metrics") or [])
        state = status.get("state", "idle")
        changed = n != known.get("n") or state != known.get("state")
        variants = _variants(known.get("owner"))
        names = sorted(variants)
        if names != known.get("variants"):
            dropdowns = self._variant_dropdowns(variants)
        else:
            dropdowns = {self.rec.variant: gr.skip(), self.cmp.variant: gr.skip(), self.ft.init: gr.skip()}
        known.update(n=n, state=state, variants=names)
        return {
            self.ft.status: ui.status_text(status),
            self.ft.plot: (service.loss_figure(status) if n else None) if changed else gr.skip(),
            self.ft.result_json: ui.status_summary(status),
            self.ft.timer: gr.Timer(active=state in service.ACTIVE_JOB_STATES),
            **dropdowns,
            self.ft.known: known,
        }

    @human_errors
    def finetune_poll(self, known) -> dict:
        """Poll this visitor's fine-tune job (it survives page reloads: the job lives in the server)."""
        owner, known = _owner(known)
        return self._poll_outputs(service.finetune_status(owner), known)

    @human_errors
    def finetune_start(
        self, dataset, backbone, alpha, w_stc, k, epochs, lr, batch_size, init, max_steps, known
    ) -> dict:
        """Start a fine-tune job in the server with these settings; the timer then polls its status."""
        _check_finetune_allowed()
        if not dataset:
            raise service.ServiceError("choose a dataset to fine-tune on, or upload a zip of class folders")
        blank = [name for name, v in (("alpha", alpha), ("learning rate", lr)) if v is None]
        if blank:
            raise service.ServiceError(f"fill in the {' and the '.join(blank)}: a number is needed")
        owner, known = _owner(known)
        init = None if not init or init == ui.AUTO_INIT else init
        max_steps = int(max_steps) if max_steps else None  # the form's 0: every epoch
        numbers = dict(alpha=alpha, w_stc=w_stc, k=k, epochs=epochs, lr=lr, batch_size=batch_size)  # the service casts
        status = service.start_finetune(
            dataset, backbone=backbone, init=init, max_steps=max_steps, owner=owner, **numbers
        )
        return self._poll_outputs(status, known)

    @human_errors
    def finetune_stop(self, known) -> dict:
        """Ask this visitor's running job to stop after its current step."""
        owner, known = _owner(known)
        return self._poll_outputs(service.stop_finetune(owner=owner), known)

    @human_errors
    def finetune_resume(self, known) -> dict:
        """Continue this visitor's stopped fine-tune from its last checkpoint (same run, same step count)."""
        _check_finetune_allowed()
        owner, known = _owner(known)
        return self._poll_outputs(service.resume_finetune(owner), known)

    @human_errors
    def finetune_save(self, name, known) -> dict:
        """Save this visitor's finished fine-tune on this server (the saved folder, not weights/).

        Returns:
            {saved as: the variant's name, and the three variant dropdowns with the saved variant among their choices}.
        """
        _check_finetune_allowed()
        owner, _ = _owner(known)
        saved = str(service.save_finetuned((name or "").strip() or None, owner=owner))
        return {self.ft.saved_to: saved, **self._variant_dropdowns(_variants(owner))}

    @human_errors
    def finetune_push(self, repo_id, token, known) -> str:
        """Push this visitor's finished fine-tune to the Hub with their own token; returns the URL as Markdown."""
        _check_finetune_allowed()
        if not repo_id or not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id.strip()):
            raise service.ServiceError(f"the repo id must look like owner/name, got {repo_id!r}")
        owner, _ = _owner(known)
        url = service.push_finetuned(repo_id.strip(), token=token or None, owner=owner)
        return f"Pushed: [{url}]({url})"

    @human_errors
    def dataset_upload(self, zip_path, known=None) -> dict:
        """Unpack an uploaded zip of class folders into this visitor's own uploads.

        Returns:
            {the dataset dropdown with it added and selected (its value ``upload:NAME``, no server path), the
            session's memory with the visitor key the upload belongs to}.
        """
        _check_finetune_allowed()
        if not zip_path:
            raise service.ServiceError("no zip file was given: upload a .zip holding one folder of clips per class")
        owner, known = _owner(known)
        spec = service.prepare_dataset_upload(zip_path, owner=owner)
        choices = [*layout.dataset_choices(), (f"{Path(zip_path).name} (uploaded)", spec)]
        return {self.ft.dataset: gr.Dropdown(choices=choices, value=spec), self.ft.known: known}

    def wire(self, demo: gr.Blocks) -> None:
        """Connect the tab's buttons, its timer and the page load to these handlers."""
        ft, rec, cmp = self.ft, self.rec, self.cmp
        poll = [ft.status, ft.plot, ft.result_json, ft.timer, rec.variant, cmp.variant, ft.init, ft.known]
        settings = [ft.dataset, ft.backbone, ft.alpha, ft.wstc, ft.k, ft.epochs, ft.lr, ft.batch, ft.init, ft.max_steps]
        ft.start.click(self.finetune_start, [*settings, ft.known], poll, api_name="finetune_start")
        ft.stop.click(self.finetune_stop, [ft.known], poll, api_name="finetune_stop")
        quiet = dict(concurrency_limit=None, show_progress="hidden")
        ft.timer.tick(self.finetune_poll, [ft.known], poll, api_name="finetune_status", **quiet)
        ft.resume.click(self.finetune_resume, [ft.known], poll, api_name="finetune_resume")
        saved = [ft.saved_to, rec.variant, cmp.variant, ft.init]
        ft.save.click(self.finetune_save, [ft.save_name, ft.known], saved, api_name="finetune_save")
        ft.push.click(self.finetune_push, [ft.repo_id, ft.token, ft.known], [ft.pushed], api_name="finetune_push")
        upload = [ft.upload_zip, ft.known]
        ft.upload_zip.upload(self.dataset_upload, upload, [ft.dataset, ft.known], api_name="dataset_upload")
        private = dict(api_visibility="private", queue=False)
        demo.load(self.remember_owner, [ft.owner, ft.known], [ft.known, ft.owner], **private).then(
            self.finetune_poll, [ft.known], poll, api_visibility="private", **quiet
        )

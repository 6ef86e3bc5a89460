"""Fine-tune jobs for the web apps: queued, one at a time, each in its own worker process with limits.

The web server never trains in its own process: a job runs ``dtcm.train.main`` in a spawned child at low
CPU priority, which reports every record back as JSON over a pipe (nothing is unpickled). The parent
watches the child's memory and wall time and stops it with a sentence when it passes the limits, so one
visitor's request can never take the server down for everyone. Each job belongs to the visitor who
started it (an ``owner`` key): only that key may stop, save or push it, and other visitors see only that
the server is busy. Importing this module does not import torch.

The service holds one ``JobManager(JobLimits.from_env())`` and calls ``submit(args, settings, owner)`` with
``dtcm.train.main``'s arguments, then ``latest(owner)`` and ``stop(owner)``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import multiprocessing as mp
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dtcm.training.terms import TERMS

__all__ = ["ACTIVE", "Job", "JobError", "JobLimits", "JobManager", "claim_owner_key", "new_owner_key"]

ACTIVE = ("queued", "preparing", "running", "stopping")  # states that move on by themselves
METRIC_KEYS = ("step", "epoch", "total_steps", "time", *TERMS, "acc", "lr")  # what a job keeps of each step
GiB = 1 << 30


class JobError(ValueError):
    """A request about a job that cannot be met, in one sentence."""


KEY_HOLDERS_MAX = 100_000  # bound keys remembered (the oldest forgotten first: their browser gets a new key)
_key_holders: collections.OrderedDict[str, str] = collections.OrderedDict()  # key -> hash of its browser


def _holder_id(holder: str) -> str:
    import hashlib

    return hashlib.sha256(str(holder).encode()).hexdigest()


def new_owner_key(holder: str | None = None) -> str:
    """A fresh, unguessable key that identifies one visitor's jobs; bound to ``holder`` when one is given."""
    key = secrets.token_urlsafe(18)
    if holder:
        _key_holders[key] = _holder_id(holder)
        while len(_key_holders) > KEY_HOLDERS_MAX:
            _key_holders.popitem(last=False)
    return key


def claim_owner_key(key: str | None, holder: str | None) -> str | None:
    """``key`` when it was made for ``holder``, else None: a key is no bearer token."""
    if not key or not holder:
        return None
    return key if _key_holders.get(key) == _holder_id(holder) else None


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * GiB


@dataclass(frozen=True)
class JobLimits:
    """What one fine-tune may use on this server; ``from_env`` reads the operator's settings."""

    memory_bytes: int = 8 * GiB  # resident memory of the worker; above it the job is stopped at once
    time_s: float = 3600.0  # wall time of one job; at the limit it stops after its step and keeps the model
    queue_size: int = 4  # jobs waiting at most; more get "the queue is full"
    threads: int = 1  # torch threads of the worker (it also runs at lower CPU priority)
    grace_s: float = 60.0  # after a stop request, the worker is killed if it has not ended by then
    poll_s: float = 0.2  # how often the parent reads the worker's records and memory

    @classmethod
    def from_env(cls) -> JobLimits:
        """``DTCM_FINETUNE_MEMORY_GB`` (default: half the RAM, at most 8), ``DTCM_FINETUNE_MAX_S`` (3600),
        ``DTCM_FINETUNE_QUEUE`` (4), ``DTCM_FINETUNE_THREADS`` (1)."""
        memory = min(8 * GiB, _total_memory() // 2)
        try:
            return cls(
                memory_bytes=int(float(os.environ.get("DTCM_FINETUNE_MEMORY_GB", memory / GiB)) * GiB),
                time_s=float(os.environ.get("DTCM_FINETUNE_MAX_S", 3600)),
                queue_size=int(os.environ.get("DTCM_FINETUNE_QUEUE", 4)),
                threads=int(os.environ.get("DTCM_FINETUNE_THREADS", 1)),
            )
        except ValueError as exc:
            raise JobError(f"a DTCM_FINETUNE_* setting is not a number: {exc}") from None


@dataclass
class Job:
    """One fine-tune: its settings, its owner and everything it has reported."""

    id: str
    owner: str | None
    args: dict  # dtcm.train.main's arguments
    settings: dict  # what the visitor asked for (shown back to them)
    prepare: Callable[[], dict] | None = None  # run in the worker before training: returns args updates
    check: Callable[[dict, dict], dict] | None = None  # run in the worker after training: the summary's "check"
    state: str = "queued"
    message: str = "waiting for the job before it to finish"
    metrics: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    summary: dict | None = None
    started: float | None = None
    ended: float | None = None
    submitted: float = field(default_factory=time.time)
    peak_memory: int = 0
    variant: str | None = None  # the model it produced, once registered
    stop_reason: str | None = None  # why the server stopped it, when it did
    stop_event: object = None  # a multiprocessing Event, made when the job starts
    on_end: Callable[[Job], None] | None = None  # called in the parent once the job has ended


def _rss(pid: int) -> int:
    """Resident memory of a process and its children, in bytes (0 when it has gone)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
    except Exception:
        return 0


def _worker(args: dict, prepare, check, conn, stop_event, threads: int) -> None:
    """The child: train and send every record, then the summary (with ``check``'s result) or the error, as JSON."""
    with contextlib.suppress(OSError):
        os.nice(10)  # interactive requests of the web server come first

    def send(kind: str, payload) -> None:
        conn.send_bytes(json.dumps({"kind": kind, "payload": payload}, default=str).encode())

    try:
        import torch

        torch.set_num_threads(max(1, threads))
        args = {k: v for k, v in args.items() if not k.startswith("_")}  # "_" keys are the parent's notes
        if prepare is not None:
            send("message", "preparing the dataset")
            args = {**args, **prepare()}
        send("running", None)
        from dtcm import train

        def callback(record: dict) -> bool:
            send("record", record)
            return stop_event.is_set()

        summary = train.main(args, callback=callback, stop_event=stop_event)
        if check is not None and summary.get("final") and stop_event.is_set():  # measuring could outlast the grace
            reason = "it was stopped before it could be measured; Resume finishes the run and measures it"
            summary = {**summary, "check": {"verdict": None, "error": reason}}
        elif check is not None and summary.get("final"):
            send("message", "measuring the start model and the result on the same validation clips")
            try:
                summary = {**summary, "check": check(args, summary)}
            except Exception as exc:  # the model is kept even when it cannot be measured
                summary = {**summary, "check": {"verdict": None, "error": str(exc) or type(exc).__name__}}
        send("done", summary)
    except BaseException as exc:  # every failure ends in a sentence in the parent
        send("error", str(exc) or type(exc).__name__)
    finally:
        conn.close()


class JobManager:
    """A queue of fine-tune jobs served one at a time by a worker process."""

    def __init__(self, limits: JobLimits | None = None):
        self.limits = limits or JobLimits.from_env()
        self.lock = threading.RLock()
        self.queue: collections.deque[Job] = collections.deque()
        self.current: Job | None = None
        self.jobs: dict[str, Job] = {}  # id -> job, the last ones of each owner
        self._ctx = mp.get_context("spawn")

    # ------------------------------------------------------------------------------- requests
    def submit(
        self, args: dict, settings: dict, owner: str | None, prepare=None, on_end=None, check=None, history=None
    ) -> Job:
        """Queue a job for ``owner``; it starts at once when no other job is running.

        ``history`` is ``(metrics, epochs)`` a resumed job carries over from the run it continues.
        """
        with self.lock:
            mine = self.latest(owner)
            if mine is not None and mine.state in ACTIVE:
                raise JobError("a fine-tune is already running on this server; stop it or wait for it to finish")
            if len(self.queue) >= self.limits.queue_size:
                raise JobError(f"the fine-tune queue is full ({self.limits.queue_size} waiting); try again later")
            job = Job(secrets.token_hex(6), owner, dict(args), dict(settings), prepare, check, on_end=on_end)
            if history is not None:
                job.metrics, job.epochs = list(history[0]), list(history[1])
            for old in [j for j in self.jobs.values() if j.owner == owner]:
                del self.jobs[old.id]  # one visitor keeps only their newest job
            self.jobs[job.id] = job
            self.queue.append(job)
            self._start_next()
            return job

    def latest(self, owner: str | None) -> Job | None:
        """The newest job of ``owner`` (None: jobs started without a key, i.e. from Python)."""
        mine = [j for j in self.jobs.values() if j.owner == owner]
        return max(mine, key=lambda j: j.submitted) if mine else None

    def stop(self, owner: str | None, wait: float = 0.0) -> Job | None:
        """Stop the owner's job after its current step (a queued one is dropped); others' jobs are refused."""
        with self.lock:
            job = self.latest(owner)
            if job is None:
                if self.current is not None and self.current.state in ACTIVE:
                    raise JobError("only the visitor who started this fine-tune can stop it")
                return None
            if job.state == "queued":
                self.queue.remove(job)
                job.state, job.message, job.ended = "stopped", "removed from the queue before it started", time.time()
            elif job.state in ("preparing", "running"):
                job.state, job.message = "stopping", "stopping after the current step"
                job.stop_event.set()
        thread = getattr(job, "_thread", None)
        if wait and thread is not None:
            thread.join(wait)
        return job

    def queue_position(self, job: Job) -> int | None:
        with self.lock:
            return list(self.queue).index(job) + 1 if job in self.queue else None

    def busy(self) -> bool:
        with self.lock:
            return (self.current is not None and self.current.state in ACTIVE) or bool(self.queue)

    # ------------------------------------------------------------------------------- running
    def _start_next(self) -> None:
        """Start the queue's head when nothing runs (the caller holds the lock)."""
        if (self.current is not None and self.current.state in ACTIVE) or not self.queue:
            return
        job = self.queue.popleft()
        self.current = job
        job.state, job.message, job.started = "preparing", "starting the training worker", time.time()
        job.stop_event = self._ctx.Event()
        job._thread = threading.Thread(target=self._supervise, args=(job,), daemon=True, name=f"dtcm-job-{job.id}")
        job._thread.start()

    def _supervise(self, job: Job) -> None:
        """Run one job's worker to its end, enforcing the limits, then start the next job."""
        lim = self.limits
        recv, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=_worker, args=(job.args, job.prepare, job.check, send, job.stop_event, lim.threads), daemon=True
        )
        proc.start()
        send.close()
        failure, kill_at = None, None
        try:
            while True:
                if recv.poll(lim.poll_s):
                    try:
                        self._on_message(job, json.loads(recv.recv_bytes()))
                    except EOFError:
                        break
                    continue
                if not proc.is_alive():
                    break
                rss = _rss(proc.pid)
                job.peak_memory = max(job.peak_memory, rss)
                if rss > lim.memory_bytes:
                    failure = (
                        f"it needed more than {lim.memory_bytes / GiB:.1f} GB of memory, this server's limit for one "
                        "job, and was stopped: choose a smaller batch, a larger k or a lighter backbone"
                    )
                    break
                now = time.time()
                if kill_at is None and (job.state == "stopping" or now - job.started > lim.time_s):
                    if job.state != "stopping":
                        job.stop_reason = f"at this server's time limit for one job ({lim.time_s / 60:.3g} min)"
                        job.state, job.message = "stopping", f"stopping {job.stop_reason}"
                        job.stop_event.set()
                    kill_at = now + lim.grace_s
                if kill_at is not None and now > kill_at:
                    failure = f"it did not stop within {lim.grace_s:.0f} s of being asked to, so it was ended"
                    break
        finally:
            if proc.is_alive():
                proc.kill()
            proc.join(10)
            recv.close()
        self._finish(job, failure, proc.exitcode)

    def _on_message(self, job: Job, msg: dict) -> None:
        kind, payload = msg["kind"], msg["payload"]
        with self.lock:
            if kind == "message" and job.state != "stopping":
                job.message = payload
            elif kind == "running" and job.state != "stopping":
                job.state, job.message = "running", "training"
            elif kind == "record":
                if payload.get("type") == "epoch":
                    job.epochs.append(payload)
                else:
                    job.metrics.append({k: payload[k] for k in METRIC_KEYS if k in payload})
                    del job.metrics[:-5000]
            elif kind == "done":
                job.summary = payload
            elif kind == "error":
                job.summary = {"error": payload}

    def _finish(self, job: Job, failure: str | None, exitcode) -> None:
        summary = job.summary or {}
        if failure is None and "error" in summary:
            failure = summary["error"]
        elif failure is None and not summary:
            failure = f"the training worker ended without a result (exit code {exitcode})"
        elif failure is None and not summary.get("steps"):
            failure = "no training step ran, so there is no model to use (were all the clips unreadable?)"
        with self.lock:  # held through on_end: nobody sees the final state before its result is kept
            job.ended = time.time()
            if failure is not None:
                job.state, job.message = "failed", f"the fine-tune failed: {failure}"
                job.summary = None
            else:
                job.state = "stopped" if summary.get("status") == "stopped" else "finished"
                job.message = f"{job.state} after {summary['steps']} steps" + (
                    f", {job.stop_reason}" if job.stop_reason else ""
                )
            if job.on_end is not None:
                try:
                    job.on_end(job)
                except Exception as exc:  # registering or cleaning must never leave the job "running"
                    job.state, job.message = "failed", f"the fine-tune ended but its result could not be kept: {exc}"
            self._start_next()

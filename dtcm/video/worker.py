"""The decode worker pool and its message protocol.

Every probe and decode runs in a long-lived decode worker, a fresh Python interpreter (exec'd like
multiprocessing's 'spawn', so no fork of a parent that holds threads or torch) talking over a socket pair.
A decoder that segfaults, hangs or runs out of memory kills only the worker; the caller gets a
``VideoDecodeError`` with a human message and the next call starts a new worker. Messages are JSON (nothing a
decoder could forge is unpickled); frames come back as raw bytes straight into the caller's array.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from dtcm.video.decode import _handle
from dtcm.video.limits import ACCEPTED, LIMITS, Limits, UnsupportedVideo, VideoDecodeError, VideoError, VideoInfo

_ERRORS = {"VideoDecodeError": VideoDecodeError, "UnsupportedVideo": UnsupportedVideo, "ValueError": ValueError}


class _WorkerDied(Exception):
    """The worker crashed, hung or was killed; the message is for the user."""


def _msg_default(obj):
    # Messages between the worker and its parent are JSON: nothing that a decoder could forge is unpickled.
    if isinstance(obj, (Limits, VideoInfo)):
        return {"__type__": type(obj).__name__, **{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}}
    if isinstance(obj, np.ndarray):
        return {"__type__": "ndarray", "dtype": str(obj.dtype), "data": obj.tolist()}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot send {type(obj).__name__} to the decode worker")


def _msg_object(d: dict):
    kind = d.pop("__type__", None)
    if kind == "ndarray":
        return np.asarray(d["data"], dtype=d["dtype"])
    if kind in ("Limits", "VideoInfo"):
        return (Limits if kind == "Limits" else VideoInfo)(**d)
    return d


def _send_msg(sock, obj) -> None:
    data = json.dumps(obj, default=_msg_default).encode()
    sock.sendall(struct.pack("<Q", len(data)) + data)


def _recv_into(sock, view, deadline) -> None:
    pos = 0
    while pos < len(view):
        if deadline is not None:
            sock.settimeout(max(deadline - time.monotonic(), 1e-3))
        got = sock.recv_into(view[pos:])
        if not got:
            raise EOFError
        pos += got


def _recv_msg(sock, deadline):
    header = bytearray(8)
    _recv_into(sock, memoryview(header), deadline)
    data = bytearray(struct.unpack("<Q", header)[0])
    _recv_into(sock, memoryview(data), deadline)
    return json.loads(data, object_hook=_msg_object)


class _Worker:
    """One decode worker process, started on first use and restarted after a crash or timeout."""

    def __init__(self):
        self.pid = os.getpid()  # the process that owns this worker (a forked copy must not use it)
        self.lock = threading.Lock()
        self.proc = self.sock = None

    def call(self, request, timeout, limits):
        """Send one request and wait at most ``timeout`` seconds for its reply and frames."""
        name = repr(Path(request[1]["path"]).name)
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start(limits)
            try:
                _send_msg(self.sock, (*request, timeout))
                deadline = time.monotonic() + timeout
                status, meta, shape = _recv_msg(self.sock, deadline)  # or ("err", class name, message)
                frames = None
                if status == "ok" and shape is not None:
                    frames = np.empty(shape, np.uint8)
                    _recv_into(self.sock, memoryview(frames).cast("B"), deadline)
            except TimeoutError:
                self.stop(kill=True)
                raise _WorkerDied(
                    f"Reading {name} took longer than {timeout:g} s and was stopped; the file may be "
                    f"damaged or unusually encoded, please upload {ACCEPTED}."
                ) from None
            except (EOFError, OSError):
                why = _exit_reason(self.stop())
                raise _WorkerDied(
                    f"The video decoder crashed on {name} ({why}); the file is probably damaged or "
                    f"unusually encoded, please upload {ACCEPTED}."
                ) from None
            except BaseException:  # e.g. KeyboardInterrupt mid-transfer: the stream is out of step
                self.stop(kill=True)
                raise
        if status == "err":
            raise _ERRORS[meta](shape)
        return meta, frames

    def _start(self, limits):
        self.stop()
        ours, theirs = socket.socketpair()
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        code = "from dtcm.video.worker import _worker_main; _worker_main()"
        cmd = [sys.executable, "-c", code, str(theirs.fileno()), str(limits.worker_memory_bytes)]
        try:
            self.proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        finally:
            theirs.close()
        self.sock = ours
        try:
            _recv_msg(ours, time.monotonic() + limits.start_timeout_s)  # "ready"
        except (EOFError, OSError):
            self.stop(kill=True)
            raise VideoDecodeError("The video decoder could not be started; please try again.") from None

    def stop(self, kill: bool = False):
        """Stop the worker; returns its exit code (negative: killed by that signal)."""
        proc, sock, self.proc, self.sock = self.proc, self.sock, None, None
        if sock is not None:
            sock.close()  # an idle worker exits on end-of-file
        if proc is None:
            return None
        if kill:
            proc.kill()
        try:
            return proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


DECODE_WORKERS = max(1, int(os.environ.get("DTCM_DECODE_WORKERS", "2")))  # decoder processes at most
_workers: list[_Worker] = []  # started on demand: a long read never holds up a short one behind it
_worker_guard = threading.Lock()


def _exit_reason(code) -> str:
    if code == -signal.SIGKILL:
        return "killed, probably for running out of memory"
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _get_worker() -> _Worker:
    """An idle decode worker; a new one while fewer than ``DECODE_WORKERS`` run; else the first (wait)."""
    with _worker_guard:
        if _workers and _workers[0].pid != os.getpid():
            _workers.clear()
        for w in _workers:
            if not w.lock.locked():
                return w
        if len(_workers) < DECODE_WORKERS:
            _workers.append(_Worker())
            return _workers[-1]
        return _workers[0]


def _forget_worker():
    # A forked copy of this process (e.g. a DataLoader worker) starts its own decode workers.
    global _workers, _worker_guard
    _workers, _worker_guard = [], threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_worker)


@atexit.register
def _stop_worker():
    for w in _workers:
        if w.pid == os.getpid():
            w.stop()


def _worker_main() -> None:
    """Entry point of the decode worker: serve requests until the parent closes the socket."""
    fd, memory = int(sys.argv[1]), int(sys.argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if memory:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    import av
    import decord

    av.logging.set_level(av.logging.ERROR)  # FFmpeg's messages reach PyAV's exceptions ...
    decord.logging.set_level(decord.logging.QUIET)
    logging.getLogger().addHandler(logging.NullHandler())  # ... but never this process's stderr
    sock = socket.socket(fileno=fd)
    _send_msg(sock, "ready")
    while True:
        try:
            op, args, timeout = _recv_msg(sock, None)
        except (EOFError, OSError):
            return  # the parent closed the socket, or died
        # SIGALRM's default action ends this process even inside native code that holds the GIL, so a
        # hung decoder cannot outlive a parent that died before it could kill it.
        signal.alarm(math.ceil(timeout) + 5)
        frames = None
        try:
            meta, frames = _handle(op, args)
            reply = ("ok", meta, None if frames is None else frames.shape)
        except Exception as e:
            reply = ("err", *_error_reply(e, args.get("path", ""), memory))
        try:
            _send_msg(sock, reply)
            if frames is not None:
                sock.sendall(memoryview(np.ascontiguousarray(frames)).cast("B"))
        except OSError:
            return
        finally:
            signal.alarm(0)
        reply = frames = None  # an idle worker holds no frames


def _error_reply(e: Exception, path: str, memory: int) -> tuple[str, str]:
    """(error class name, message) for an exception raised while serving a request."""
    import av

    name = repr(Path(path).name)
    if isinstance(e, VideoError):
        return type(e).__name__, str(e)
    if isinstance(e, MemoryError):
        return "VideoDecodeError", (
            f"Decoding {name} needed more than the {memory / 2**30:.1f} GiB of memory allowed; "
            "please upload a shorter or smaller video."
        )
    if isinstance(e, ValueError) and not isinstance(e, av.FFmpegError):
        return "ValueError", str(e)  # a bad argument, e.g. a frame index past the end
    return "VideoDecodeError", f"{name} could not be decoded ({type(e).__name__}: {e}); please upload {ACCEPTED}."


def _run(op, args, limits, isolate, timeout):
    """One request: in this process, or in the worker (crash, hang and memory become errors)."""
    if not isolate:
        try:
            return _handle(op, {**args, "limits": limits})
        except (VideoError, MemoryError):
            raise
        except Exception as e:
            kind, message = _error_reply(e, args["path"], 0)
            if kind == "ValueError":
                raise
            raise _ERRORS[kind](message) from e
    try:
        return _get_worker().call((op, {**args, "limits": limits}), timeout, limits)
    except _WorkerDied as e:
        if op == "read":
            raise
        raise VideoDecodeError(str(e)) from None


def _debug_crash(how: str = "segfault") -> None:
    """Test hook: make the decode worker die ("segfault" or "abort"); raises VideoDecodeError."""
    _run("crash", {"how": how, "path": "debug"}, LIMITS, True, LIMITS.decode_timeout_s)


def _debug_hang(timeout_s: float = 2.0) -> None:
    """Test hook: make the decode worker hang; raises VideoDecodeError after ``timeout_s``."""
    _run("hang", {"path": "debug"}, LIMITS, True, timeout_s)


def _debug_alloc(nbytes: int) -> None:
    """Test hook: make the decode worker allocate ``nbytes`` (beyond its limit: VideoDecodeError)."""
    _run("alloc", {"nbytes": int(nbytes), "path": "debug"}, LIMITS, True, LIMITS.decode_timeout_s)

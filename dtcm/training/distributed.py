"""The few collectives the loop needs beyond DDP's own; each is the identity with one process."""

from __future__ import annotations

import hashlib

import torch
import torch.nn as nn

__all__ = ["all_reduce", "all_reduce_grads", "any_process", "broadcast_buffers", "gather_objects", "weights_hash"]


def all_reduce(accelerator, values: list[float]) -> list[float]:
    """Sum a few numbers over processes (identity with one process)."""
    if accelerator.num_processes == 1:
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=accelerator.device)
    torch.distributed.all_reduce(t)
    return t.tolist()


def any_process(accelerator, flag: bool) -> bool:
    """Whether ``flag`` is set on any process."""
    if accelerator.num_processes == 1:
        return flag
    return all_reduce(accelerator, [float(flag)])[0] > 0


def broadcast_buffers(accelerator, model) -> None:
    """Give every process the main process's BatchNorm statistics, as DDP does at the start of each forward."""
    if accelerator.num_processes > 1:
        for b in model.buffers():
            torch.distributed.broadcast(b, src=0)


def all_reduce_grads(params, world: int) -> None:
    """Average gradients by hand: a window whose last micro-batch was empty never went through DDP's hook."""
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        torch.distributed.all_reduce(p.grad)
        p.grad /= world


def gather_objects(accelerator, obj) -> list:
    """Every process's ``obj``, in rank order."""
    if accelerator.num_processes == 1:
        return [obj]
    out = [None] * accelerator.num_processes
    torch.distributed.all_gather_object(out, obj)
    return out


def weights_hash(model: nn.Module) -> str:
    """SHA-256 of a model's state_dict (names, dtypes, shapes and bytes), to check processes agree."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()

"""Multi-process runs under ``torchrun``: process-group set-up, work sharding, ordered gathering.

Shared by training (:class:`scoremed.training.Trainer`) and reconstruction
(:mod:`scoremed.apps.stack`).

``torchrun --nproc_per_node=P scripts/train_prior.py ...`` (or ``--nnodes``/``--rdzv-*`` for
several machines) starts P processes with the environment variables ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT``; :func:`init_distributed`
reads them and joins the process group (gloo on the CPU, NCCL on CUDA). Without them it
returns a single-process :class:`DistContext` and nothing else changes.

Work that has to give the same answer for any number of processes (reconstructing a
study slice by slice, :mod:`scoremed.apps.stack`) is cut into *fixed* work units first — chunks of ``chunk_size``
slices, each with its own seed — and only then are whole units dealt out to ranks
(:func:`shard_range`); :func:`map_sharded` returns the results in the original order on
every rank. Only rank 0 should write files (:attr:`DistContext.is_main`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist

from scoremed.errors import InputError

log = logging.getLogger("scoremed")

BACKENDS = ("auto", "gloo", "nccl")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the one process that writes logs, checkpoints and outputs."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of ``tensor`` over ranks (a new tensor; the input itself when single-process)."""
        if not self.is_distributed:
            return tensor
        out = tensor.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / self.world_size

    def all_gather_objects(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (pickled; move tensors to the CPU first)."""
        if not self.is_distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank."""
        if not self.is_distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{name}: expected an integer environment variable (set by torchrun), got {text!r}") from None


def launched_with_torchrun() -> bool:
    """True when the environment describes more than one process (torchrun, or a scheduler that sets it)."""
    return _env_int("WORLD_SIZE", 1) > 1


def init_distributed(device: torch.device | str | None = None, backend: str = "auto") -> DistContext:
    """Join the process group described by torchrun's environment, or return a single-process context.

    Args:
        device: None picks ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU. A bare
            "cuda" becomes ``cuda:LOCAL_RANK``; an explicit index is kept.
        backend: "auto" (NCCL for CUDA devices, gloo for the CPU), "gloo" or "nccl".
    """
    if backend not in BACKENDS:
        raise InputError(f"backend: expected one of {list(BACKENDS)}, got {backend!r}")
    world, rank, local_rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if device is None:
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device: {device} requested but CUDA is not available on this machine")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if world <= 1:
        return DistContext(device=device)
    if not 0 <= rank < world:
        raise InputError(f"RANK: expected 0 <= RANK < WORLD_SIZE = {world}, got {rank}")
    chosen = ("nccl" if device.type == "cuda" else "gloo") if backend == "auto" else backend
    if chosen == "nccl" and device.type != "cuda":
        raise InputError(f"backend: nccl needs CUDA devices, but this process runs on {device}; use gloo")
    if chosen == "nccl" and not dist.is_nccl_available():
        raise InputError("backend: this torch build has no NCCL; use gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=chosen, rank=rank, world_size=world)
    log.debug("process %d of %d (local rank %d) on %s, backend %s", rank, world, local_rank, device, chosen)
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=device, backend=chosen)


def current_context(device: torch.device | str | None = None) -> DistContext:
    """The context of an already initialised process group (single-process if none)."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                           local_rank=_env_int("LOCAL_RANK", 0), device=device, backend=dist.get_backend())
    return DistContext(device=device)


def shutdown(ctx: DistContext | None = None) -> None:
    """Leave the process group (no-op for single-process runs)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_range(n_items: int, rank: int, world_size: int) -> range:
    """The contiguous share of ``n_items`` that ``rank`` handles; the first n % world ranks get one more."""
    base, extra = divmod(int(n_items), int(world_size))
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def map_sharded(fn: Callable[[int, Any], Any], items: Sequence[Any], ctx: DistContext | None = None) -> list[Any]:
    """``[fn(i, items[i]) for i in range(len(items))]`` with the items shared out over ranks.

    Each rank evaluates its contiguous share (:func:`shard_range`); the results are gathered
    and returned in the original order on every rank. ``fn`` should return CPU tensors or
    plain objects (they are pickled between processes).
    """
    ctx = ctx or current_context()
    mine = [fn(i, items[i]) for i in shard_range(len(items), ctx.rank, ctx.world_size)]
    return [result for part in ctx.all_gather_objects(mine) for result in part]


"""Trainer: denoising score matching with Adam, warm-up, gradient clipping, EMA and checkpoints.

Under ``torchrun`` (a :class:`scoremed.distributed.DistContext` with several processes) the
model is wrapped in torch DistributedDataParallel: ``training.batch_size`` stays the
*global* batch, each rank takes its contiguous share of every deterministic global batch
and of that batch's noise, so the loss trajectory is the one of a single process with the
same batch and a run can be resumed with another process count. Only rank 0 writes
``log.csv`` and checkpoints.
"""
from __future__ import annotations

import contextlib
import functools
import csv
import logging
import os
import time
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from scoremed.distributed import DistContext
from scoremed.errors import InputError, resolve_device
from scoremed.io.checkpoint import (latest_checkpoint, load_weights_strict, prior_metadata, read_json, read_safetensors,
                                    read_training_state, save_training_checkpoint)
from scoremed.networks import build_score_network
from scoremed.networks.speed import fast_score, resolve_compile, resolve_precision
from scoremed.prior import ScorePrior
from scoremed.priors import read_prior_weights
from scoremed.sde import SDE, sde_from_config
from scoremed.training.config import Config
from scoremed.training.ema import EMA
from scoremed.training.losses import NoiseSampling, draw_dsm_noise, dsm_loss, dsm_loss_given_noise

log = logging.getLogger("scoremed.training")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


class StepBatchSampler(Sampler[list[int]]):
    """Deterministic batches by step: a fresh seeded permutation per epoch, resumable at any step.

    With ``world_size > 1`` each rank takes its contiguous share of every global batch.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int, start_step: int = 0, rank: int = 0,
                 world_size: int = 1):
        if batch_size % world_size:
            raise InputError(f"batch_size: expected a multiple of the {world_size} processes, got {batch_size}")
        self.n, self.batch, self.seed, self.step = n_items, batch_size, seed, start_step
        self.rank, self.world = rank, world_size

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        share = self.batch // self.world
        epoch, perm = -1, None
        step = self.step
        while True:
            start = step * self.batch + self.rank * share
            indices = []
            for pos in range(start, start + share):
                if pos // self.n != epoch:
                    epoch = pos // self.n
                    perm = self._permutation(epoch)
                indices.append(int(perm[pos % self.n]))
            yield indices
            step += 1


def shard_noise(sde: SDE, shape: tuple[int, ...], eps: float, generator: torch.Generator, rank: int,
                world_size: int, device, dtype=torch.float32,
                sampling: NoiseSampling = NoiseSampling()) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, z) of rank ``rank``'s share of a global batch (B * world_size, ...) of DSM noise.

    Draws exactly what :func:`scoremed.training.losses.dsm_loss` draws for the whole global batch
    (t first, then z, from the same generator) and keeps this rank's contiguous rows, so
    the union over ranks equals the single-process draw.
    """
    local = shape[0]
    t, z = draw_dsm_noise(sde, (local * world_size, *shape[1:]), eps, generator, device, dtype, sampling)
    rows = slice(rank * local, (rank + 1) * local)
    return t[rows], z[rows]


class Trainer:
    """Train a score network on ``dataset`` as described by ``config`` into ``run_dir``.

    Args:
        config: validated :class:`Config`.
        dataset: map-style dataset of (C, H, W) float tensors in [0, 1].
        run_dir: where checkpoints, ``log.csv`` and ``latest`` go.
        device: torch device; defaults to CUDA when available (``dist.device`` when given).
        resume: continue from the latest checkpoint in ``run_dir`` (error if none).
        init: start from the weights of a trained prior of the same architecture (a shipped name,
            ``.safetensors`` file or run folder) instead of a random network: fine-tuning, or more
            steps for a shipped prior. The optimiser and the step count start afresh.
        dist: the process's place in a torchrun job (:func:`scoremed.distributed.init_distributed`);
            None: a single process.
    """

    def __init__(self, config: Config, dataset: Dataset, run_dir: str | os.PathLike, device=None,
                 resume: bool = False, progress: bool = True, dist: DistContext | None = None,
                 init: str | os.PathLike | None = None):
        self.config, self.dataset, self.run_dir = config, dataset, Path(run_dir)
        if dist is not None and dist.is_distributed:
            device = dist.device
        self.device = resolve_device(device)
        self.dist = dist if dist is not None else DistContext(device=self.device)
        self.progress = progress and self.dist.is_main
        tc = config.training
        if tc.batch_size % self.dist.world_size:
            raise InputError(f"training.batch_size: expected a multiple of the {self.dist.world_size} processes "
                             f"(it is the global batch), got {tc.batch_size}")
        self.precision = resolve_precision(tc.precision, self.device)
        self.compile_mode = resolve_compile(tc.compile, self.device)
        self.channels_last = bool(tc.channels_last)
        self.sde = sde_from_config(config.sde.kind, **config.sde.params())
        self.noise_sampling = config.noise_sampling()
        torch.manual_seed(tc.seed)
        self.model = build_score_network(config.architecture(), self.sde).to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.ema = EMA(self.model, tc.ema_decay)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.lr)
        self.step = 0
        self.initialised_from: dict | None = None
        if resume and init is not None:
            raise InputError("init: a resumed run continues from its own checkpoint; give either resume or init")
        if resume:
            self._resume()
        elif init is not None:
            self._initialise(init)
        self.forward_model = self._wrap(self.model)
        # compile is applied by _wrap (around DDP), so the speed wrapper only adds autocast / channels-last
        self._fast_model = fast_score(self.forward_model, self.device, self.precision, self.channels_last, "off")

    def _wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DDP when several processes, then torch.compile when asked; the raw model stays ``self.model``."""
        if self.dist.is_distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None)
        if self.compile_mode != "off":
            model = torch.compile(model, mode=None if self.compile_mode == "default" else self.compile_mode)
        return model

    def _score(self, x: torch.Tensor, t: torch.Tensor, position: torch.Tensor | None = None) -> torch.Tensor:
        """The training-time score: the (DDP / compiled) model under the speed options, float32 out.

        ``position`` (B, 2, P, P): the patches' positions, for patch training.
        """
        return self._fast_model(x, t) if position is None else self._fast_model(x, t, position)

    # -- checkpoints -----------------------------------------------------------------
    def metadata(self) -> dict:
        prior = ScorePrior(self.sde, self.ema.module, self.config.image_shape(), name=self.config.name,
                           solve_defaults=self.config.solve)
        extra = {"initialised_from": self.initialised_from} if self.initialised_from else {}
        return prior_metadata(prior, self.config.architecture(), name=self.config.name, config=self.config.to_dict(),
                              **extra)

    def save(self) -> Path | None:
        """Write a checkpoint (rank 0 only; other ranks return None)."""
        if not self.dist.is_main:
            return None
        state = {"optimizer": self.optimizer.state_dict(), "step": self.step,
                 "torch_rng": torch.get_rng_state(), "world_size": self.dist.world_size}
        path = save_training_checkpoint(self.run_dir, self.step, self.model, self.ema.module, self.metadata(), state,
                                        keep=self.config.training.keep_checkpoints)
        log.info("checkpoint written: %s", path)
        return path

    def _initialise(self, init: str | os.PathLike) -> None:
        meta, weights, where = read_prior_weights(init)
        load_weights_strict(self.model, weights, f"{where} (init)")
        self.ema.module.load_state_dict(self.model.state_dict())
        step = meta.get("training", {}).get("step", meta.get("step"))
        self.initialised_from = {"prior": str(init), "step": step}
        log.info("initialised from %s (trained %s steps)", where, step)

    def _resume(self) -> None:
        ckpt = latest_checkpoint(self.run_dir)
        if ckpt is None:
            raise InputError(f"resume: no checkpoint found in {self.run_dir}")
        meta = read_json(ckpt / "metadata.json")
        tensors = read_safetensors(ckpt / "weights.safetensors", sha256=meta.get("weights_sha256"))
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.ema.module.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        state = read_training_state(ckpt / "training_state.pt", self.device, sha256=meta.get("training_state_sha256"))
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"].cpu())
        self.step = int(meta["step"])
        self.initialised_from = meta.get("initialised_from")
        before = int(state.get("world_size", 1))
        log.info("resumed from %s at step %d%s", ckpt, self.step,
                 f" (checkpoint of a {before}-process run, now {self.dist.world_size} processes)"
                 if before != self.dist.world_size else "")

    # -- the loop ----------------------------------------------------------------------
    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """(images (B, C, H, W), positions (B, 2, H, W) or None) per step."""
        sampler = StepBatchSampler(len(self.dataset), self.config.training.batch_size, self.config.training.seed,
                                   start_step=self.step, rank=self.dist.rank, world_size=self.dist.world_size)
        loader = DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.config.data.num_workers,
                            pin_memory=self.device.type == "cuda", persistent_workers=False)
        for batch in loader:
            images, position = batch if isinstance(batch, (list, tuple)) else (batch, None)
            yield (images.to(self.device, non_blocking=True),
                   None if position is None else position.to(self.device, non_blocking=True))

    def _lr(self) -> float:
        tc = self.config.training
        return tc.lr * min(1.0, (self.step + 1) / max(1, tc.warmup))

    def train_step(self, x0: torch.Tensor, generator: torch.Generator,
                   position: torch.Tensor | None = None) -> torch.Tensor:
        """One optimiser step on images x0 (B, C, H, W) (patches at ``position`` (B, 2, H, W) if given)."""
        tc = self.config.training
        score = self._score if position is None else functools.partial(self._score, position=position)
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        if self.dist.is_distributed:
            t, z = shard_noise(self.sde, tuple(x0.shape), tc.eps, generator, self.dist.rank, self.dist.world_size,
                               x0.device, x0.dtype, self.noise_sampling)
            loss = dsm_loss_given_noise(score, self.sde, x0, t, z, tc.likelihood_weighting).mean()
        else:
            loss = dsm_loss(score, self.sde, x0, tc.eps, tc.likelihood_weighting, generator,
                            self.noise_sampling).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        self.optimizer.step()
        self.ema.update(self.model, self.step + 1)
        self.step += 1
        return loss.detach()

    def train(self, steps: int | None = None) -> dict:
        """Train until ``steps`` total steps (default: config) and return a summary dict.

        The logged loss is the mean over the logging interval and over all processes; the
        images/s rate counts the images of all processes.
        """
        tc = self.config.training
        total = tc.steps if steps is None else steps
        main = self.dist.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / "log.csv"
        new_log = main and not log_path.exists()
        generator = torch.Generator(device=self.device)
        losses, bad = [], torch.zeros((), dtype=torch.bool, device=self.device)
        bar = tqdm(total=total, initial=self.step, disable=not self.progress, desc=self.config.name, unit="step")
        t0, images = time.perf_counter(), 0
        last_loss = float("nan")
        self.model.train()
        try:
            with (open(log_path, "a", newline="") if main else contextlib.nullcontext()) as fh:
                writer = csv.writer(fh) if main else None
                if new_log:
                    writer.writerow(["step", "loss", "lr", "images_per_s"])
                batches = self._batches()
                while self.step < total:
                    generator.manual_seed(tc.seed * 1_000_003 + self.step)
                    x0, position = next(batches)
                    loss = self.train_step(x0, generator, position)
                    bad |= ~torch.isfinite(loss)
                    losses.append(loss)
                    images += x0.shape[0] * self.dist.world_size
                    due_log = self.step % tc.log_every == 0 or self.step == total
                    due_ckpt = self.step % tc.checkpoint_every == 0 or self.step == total
                    if due_log or due_ckpt:
                        interval = self.dist.all_reduce_mean(torch.stack(losses))
                        if bool(bad) or not bool(torch.isfinite(interval).all()):
                            raise TrainingDiverged(
                                f"training loss became NaN/Inf before step {self.step}; stopped without saving. "
                                f"The last good checkpoint in {self.run_dir} is kept; lower training.lr or "
                                "check the data for non-finite values")
                        last_loss = float(interval.mean())
                        rate = images / (time.perf_counter() - t0)
                        if main:
                            writer.writerow([self.step, f"{last_loss:.6f}", f"{self._lr():.3g}", f"{rate:.2f}"])
                            fh.flush()
                        bar.set_postfix(loss=f"{last_loss:.4f}", img_s=f"{rate:.1f}")
                        bar.update(self.step - bar.n)
                        losses, images, t0 = [], 0, time.perf_counter()
                    if due_ckpt:
                        self.save()
        except KeyboardInterrupt:
            if not bool(bad) and main:
                log.warning("interrupted at step %d; writing a checkpoint", self.step)
                self.save()
            raise
        finally:
            bar.close()
        self.dist.barrier()   # every process returns once the final checkpoint is on disk
        return {"step": self.step, "loss": last_loss, "run_dir": str(self.run_dir)}

"""Trainer: denoising score matching with Adam, warm-up, gradient clipping, EMA and checkpoints."""
from __future__ import annotations

import copy
import csv
import logging
import os
import time
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from scoremed.checkpoint import latest_checkpoint, prior_metadata, read_json, read_safetensors, save_training_checkpoint
from scoremed.config import Config
from scoremed.errors import InputError
from scoremed.losses import dsm_loss
from scoremed.network import build_score_network
from scoremed.prior import ScorePrior
from scoremed.sde import sde_from_config

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


class EMA:
    """Exponential moving average of a module's floating-point state."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        ema_p = [p for p in self.module.parameters()]
        torch._foreach_lerp_(ema_p, [p.detach() for p in model.parameters()], 1 - self.decay)
        for eb, b in zip(self.module.buffers(), model.buffers()):
            eb.copy_(b)


class Trainer:
    """Train a score network on ``dataset`` as described by ``config`` into ``run_dir``.

    Args:
        config: validated :class:`Config`.
        dataset: map-style dataset of (C, H, W) float tensors in [0, 1].
        run_dir: where checkpoints, ``log.csv`` and ``latest`` go.
        device: torch device; defaults to CUDA when available.
        resume: continue from the latest checkpoint in ``run_dir`` (error if none).
    """

    def __init__(self, config: Config, dataset: Dataset, run_dir: str | os.PathLike, device=None,
                 resume: bool = False, progress: bool = True):
        self.config, self.dataset, self.run_dir = config, dataset, Path(run_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.progress = progress
        tc = config.training
        self.sde = sde_from_config(config.sde.kind, **config.sde.params())
        torch.manual_seed(tc.seed)
        self.model = build_score_network(config.architecture(), self.sde).to(self.device)
        self.ema = EMA(self.model, tc.ema_decay)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.lr)
        self.step = 0
        if resume:
            self._resume()

    # -- checkpoints -----------------------------------------------------------------
    def metadata(self) -> dict:
        prior = ScorePrior(self.sde, self.ema.module, (self.config.data.channels, self.config.data.image_size,
                                                      self.config.data.image_size), name=self.config.name,
                           solve_defaults=self.config.solve)
        return prior_metadata(prior, self.config.architecture(), name=self.config.name, config=self.config.to_dict())

    def save(self) -> Path:
        state = {"optimizer": self.optimizer.state_dict(), "step": self.step,
                 "torch_rng": torch.get_rng_state()}
        path = save_training_checkpoint(self.run_dir, self.step, self.model, self.ema.module, self.metadata(), state,
                                        keep=self.config.training.keep_checkpoints)
        log.info("checkpoint written: %s", path)
        return path

    def _resume(self) -> None:
        ckpt = latest_checkpoint(self.run_dir)
        if ckpt is None:
            raise InputError(f"--resume: no checkpoint found in {self.run_dir}")
        tensors = read_safetensors(ckpt / "weights.safetensors")
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.ema.module.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        state = torch.load(ckpt / "training_state.pt", map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"].cpu())
        self.step = int(read_json(ckpt / "metadata.json")["step"])
        log.info("resumed from %s at step %d", ckpt, self.step)

    # -- the loop ----------------------------------------------------------------------
    def _batches(self) -> Iterator[torch.Tensor]:
        sampler = StepBatchSampler(len(self.dataset), self.config.training.batch_size, self.config.training.seed,
                                   start_step=self.step)
        loader = DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.config.data.num_workers,
                            pin_memory=self.device.type == "cuda", persistent_workers=False)
        for batch in loader:
            yield batch.to(self.device, non_blocking=True)

    def _lr(self) -> float:
        tc = self.config.training
        return tc.lr * min(1.0, (self.step + 1) / max(1, tc.warmup))

    def train_step(self, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        tc = self.config.training
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        loss = dsm_loss(self.model, self.sde, x0, tc.eps, tc.likelihood_weighting, generator).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        self.optimizer.step()
        self.ema.update(self.model)
        self.step += 1
        return loss.detach()

    def train(self, steps: int | None = None) -> dict:
        """Train until ``steps`` total steps (default: config) and return a summary dict."""
        tc = self.config.training
        total = tc.steps if steps is None else steps
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / "log.csv"
        new_log = not log_path.exists()
        generator = torch.Generator(device=self.device)
        losses, bad = [], torch.zeros((), dtype=torch.bool, device=self.device)
        bar = tqdm(total=total, initial=self.step, disable=not self.progress, desc=self.config.name, unit="step")
        t0, images = time.perf_counter(), 0
        last_loss = float("nan")
        self.model.train()
        try:
            with open(log_path, "a", newline="") as fh:
                writer = csv.writer(fh)
                if new_log:
                    writer.writerow(["step", "loss", "lr", "images_per_s"])
                batches = self._batches()
                while self.step < total:
                    generator.manual_seed(tc.seed * 1_000_003 + self.step)
                    x0 = next(batches)
                    loss = self.train_step(x0, generator)
                    bad |= ~torch.isfinite(loss)
                    losses.append(loss)
                    images += x0.shape[0]
                    due_log = self.step % tc.log_every == 0 or self.step == total
                    due_ckpt = self.step % tc.checkpoint_every == 0 or self.step == total
                    if due_log or due_ckpt:
                        if bool(bad):
                            raise TrainingDiverged(
                                f"training loss became NaN/Inf before step {self.step}; stopped without saving. "
                                f"The last good checkpoint in {self.run_dir} is kept; lower training.lr or "
                                "check the data for non-finite values")
                        last_loss = float(torch.stack(losses).mean())
                        rate = images / (time.perf_counter() - t0)
                        writer.writerow([self.step, f"{last_loss:.6f}", f"{self._lr():.3g}", f"{rate:.2f}"])
                        fh.flush()
                        bar.set_postfix(loss=f"{last_loss:.4f}", img_s=f"{rate:.1f}")
                        bar.update(self.step - bar.n)
                        losses, images, t0 = [], 0, time.perf_counter()
                    if due_ckpt:
                        self.save()
        except KeyboardInterrupt:
            if not bool(bad):
                log.warning("interrupted at step %d; writing a checkpoint", self.step)
                self.save()
            raise
        finally:
            bar.close()
        return {"step": self.step, "loss": last_loss, "run_dir": str(self.run_dir)}

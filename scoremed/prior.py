"""ScorePrior: an SDE, a score function and the image convention it works in."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from scoremed.errors import InputError
from scoremed.sde import SDE, ScoreFn


@dataclass
class ScorePrior:
    """A score-based prior p(x) usable by every sampler, likelihood and solver.

    Args:
        sde: the forward SDE the score belongs to.
        score_fn: callable ``(x (B, *image_shape), t (B,)) -> score`` shaped like x, in the
            SDE's (model) space. A plain callable is used exactly as given: no rescaling.
        image_shape: (C, H, W) or (C, D, H, W) without the batch dim; (C, None, None) for a
            resolution-free prior (e.g. a patch prior), whose image size comes from the operator
            or an explicit ``shape`` (see :meth:`shape_for`).
        centered: intensity convention. False: the model space is the data space (images in
            [0, 1] for the shipped priors). True: model space is 2 x - 1 for data in [0, 1].
        name: a human-readable name (shipped prior name or checkpoint path).
        solve_defaults: per-method default solve settings, e.g. {"consistency": {"snr": 0.16}}.
        metadata: free-form facts from the checkpoint (training step, config, ...).
    """

    sde: SDE
    score_fn: ScoreFn
    image_shape: tuple[int | None, ...]
    centered: bool = False
    name: str = "custom"
    solve_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.sde, SDE):
            raise InputError(f"sde: expected a scoremed SDE (VESDE, VPSDE, subVPSDE), got {type(self.sde).__name__}")
        if not callable(self.score_fn):
            raise InputError(f"score_fn: expected a callable score(x, t), got {type(self.score_fn).__name__}")
        shape = tuple(None if s is None else int(s) for s in self.image_shape)
        sizes = shape[1:]
        if len(shape) not in (3, 4) or shape[0] is None or shape[0] < 1 \
                or not (all(s is None for s in sizes) or all(s is not None and s >= 1 for s in sizes)):
            raise InputError(f"image_shape: expected (C, H, W) or (C, D, H, W) with positive sizes, or (C, None, None) "
                             f"for a resolution-free prior, got {self.image_shape}")
        self.image_shape = shape

    @property
    def resolution_free(self) -> bool:
        """True when the prior scores images of any size (image_shape (C, None, None))."""
        return self.image_shape[1] is None

    def shape_for(self, shape=None) -> tuple[int, ...]:
        """The full image shape (C, H, W) to sample at: ``shape`` for a resolution-free prior
        (required), ``image_shape`` for a fixed one (``shape``, if given, must equal it)."""
        if shape is None:
            if self.resolution_free:
                raise InputError(f"shape: prior '{self.name}' is resolution-free; give the image shape, "
                                 f"e.g. shape=({self.channels}, 256, 256)")
            return self.image_shape
        shape = tuple(int(s) for s in shape)
        if len(shape) == len(self.image_shape) - 1:
            shape = (self.channels, *shape)
        fits = len(shape) == len(self.image_shape) and shape[0] == self.channels and all(
            want is None or want == got for want, got in zip(self.image_shape, shape))
        if not fits or min(shape) < 1:
            raise InputError(f"shape: prior '{self.name}' works on images {self._describe()}, got {shape}")
        return shape

    def _describe(self) -> str:
        if self.resolution_free:
            return f"of {self.channels} channel(s) and any size"
        return str(self.image_shape)

    def score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Score of p_t at x (model space); x (B, *image_shape), t (B,)."""
        return self.score_fn(x, t)

    @property
    def channels(self) -> int:
        return self.image_shape[0]

    @property
    def network(self) -> torch.nn.Module | None:
        """The network behind the score, if the score is a torch module."""
        return self.score_fn if isinstance(self.score_fn, torch.nn.Module) else None

    @property
    def device(self) -> torch.device:
        net = self.network
        params = next(net.parameters(), None) if net is not None else None
        return params.device if params is not None else torch.device("cpu")

    def to(self, device: torch.device | str | None) -> "ScorePrior":
        """Move the network (if any) to ``device``; returns self."""
        if device is not None and self.network is not None:
            self.network.to(device)
        return self

    # -- intensity convention: data space <-> model space (both affine) ----------------
    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x - 1 if self.centered else x

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 1) / 2 if self.centered else x

    @property
    def model_scale(self) -> float:
        """d(model)/d(data): the Jacobian factor per dimension of :meth:`to_model`."""
        return 2.0 if self.centered else 1.0

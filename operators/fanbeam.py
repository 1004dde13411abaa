"""2D fan-beam CT with a flat or curved (equi-angular) detector: the same matrix-free projector, FBP.

Geometry (pixel units, rotation centre c = (n // 2, n // 2)): at view angle β the central
ray runs along u = (sin β, cos β) from the source at c - R u to the detector centre at
c + D u (R = ``source_distance``, D = ``detector_distance`` from the rotation centre); the
detector axis is e = (cos β, -sin β). A flat detector's bin d sits at c + D u + s_d e with
s_d = (d - detector_center) * detector_spacing; a curved one lies on the arc of radius
R + D around the source, at fan angle γ_d = (d - detector_center) * detector_spacing / (R + D)
(the spacing is then the arc length per bin). β = 0 matches the parallel-beam θ = 0.

FBP follows Kak & Slaney (ch. 3.4) for a full turn of evenly spaced views (no short-scan
weights): cosine pre-weighting, the ramp at the bin spacing (curved: times (γ / sin γ)^2),
distance-weighted back-projection.
"""
from __future__ import annotations

import math

import torch

from scoremed.errors import InputError

from .ct import CT, check_angles
from .radon import RayTransform, filter_sinogram

__all__ = ["FanBeam", "FanBeamCT"]


class FanBeam(RayTransform):
    """The fan-beam ray transform, no support mask: image (B, C, n, n) -> (B, C, V, n_detectors)."""

    def __init__(self, image_size: int, angles: torch.Tensor, n_detectors: int, source_distance: float,
                 detector_distance: float, detector_spacing: float = 1.0, detector_center: float | None = None,
                 curved: bool = False, cache_bytes: int | None = None):
        super().__init__(image_size, len(angles), n_detectors, cache_bytes)
        self.register_buffer("angles", angles.to(torch.get_default_dtype()))
        self.source_distance, self.detector_distance = float(source_distance), float(detector_distance)
        self.detector_spacing, self.curved = float(detector_spacing), bool(curved)
        self.detector_center = float(n_detectors // 2 if detector_center is None else detector_center)

    def _bins(self, dtype: torch.dtype) -> torch.Tensor:
        """Fan angle (curved, radians) or detector offset (flat, pixels) of every bin."""
        d = torch.arange(self.n_detectors, dtype=dtype, device=self.angles.device) - self.detector_center
        scale = self.detector_spacing / (self.source_distance + self.detector_distance) if self.curved \
            else self.detector_spacing
        return d * scale

    def _frame(self, views: slice, dtype: torch.dtype):
        beta = self.angles[views].to(dtype)[:, None]
        return torch.sin(beta), torch.cos(beta), self.image_size // 2  # u = (sin, cos), e = (cos, -sin)

    def rays(self, views: slice, dtype: torch.dtype):
        sin, cos, c = self._frame(views, dtype)
        r, bins = self.source_distance, self._bins(dtype)
        if self.curved:
            along, across = torch.cos(bins), torch.sin(bins)
        else:
            along, across = r + self.detector_distance, bins
        return c - r * sin, c - r * cos, along * sin + across * cos, along * cos - across * sin

    def preweight(self, sinogram: torch.Tensor) -> torch.Tensor:
        """Curved: times R cos γ; flat: times R / sqrt(R^2 + s'^2) at the isocentre offset s'."""
        bins, r = self._bins(sinogram.dtype), self.source_distance
        if self.curved:
            return sinogram * (r * torch.cos(bins))
        virtual = bins * (r / (r + self.detector_distance))
        return sinogram * (r / torch.sqrt(r * r + virtual * virtual))

    def filter(self, sinogram: torch.Tensor, window: str) -> torch.Tensor:
        r = self.source_distance
        if self.curved:
            step = self.detector_spacing / (r + self.detector_distance)
            return filter_sinogram(sinogram, window, step, fan_step=step)
        return filter_sinogram(sinogram, window, self.detector_spacing * r / (r + self.detector_distance))

    def detector_positions(self, views: slice, dtype: torch.dtype):
        sin, cos, c = self._frame(views, dtype)
        sin, cos = sin[:, :, None], cos[:, :, None]
        pos = torch.arange(self.image_size, dtype=dtype, device=self.angles.device) - c
        x, y = pos[None, None, :], pos[None, :, None]
        r = self.source_distance
        depth, across = r + x * sin + y * cos, x * cos - y * sin  # distance along u from the source; offset along e
        if self.curved:
            step = self.detector_spacing / (r + self.detector_distance)
            return torch.atan2(across, depth) / step + self.detector_center, 1 / (depth * depth + across * across)
        step = self.detector_spacing * r / (r + self.detector_distance)
        return r * across / depth / step + self.detector_center, (r / depth) ** 2

    def fbp_weights(self, dtype: torch.dtype) -> torch.Tensor:
        """π / n_views per view: Δβ / 2 for a full turn of evenly spaced views."""
        return torch.full((self.n_views,), math.pi / self.n_views, dtype=dtype, device=self.angles.device)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, source_distance={self.source_distance}, "
                f"detector_distance={self.detector_distance}, curved={self.curved}")


def _distance(value: object, name: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > minimum):
        raise InputError(f"{name}: expected a number > {minimum:.4g} (pixels), got {value!r}")
    return float(value)


class FanBeamCT(CT):
    """Fan-beam CT: image (B, C, n, n) -> sinogram (B, C, n_views, n_detectors); see the module docstring.

    Args:
        image_size, angles, circle, cache_bytes: as for :class:`CT` (angles are source angles).
        source_distance: rotation centre to source, pixels (> the imaged radius).
        detector_distance: rotation centre to detector (centre), pixels (>= 0).
        n_detectors: bins (default: enough to cover the imaged disc / square).
        detector_spacing: bin width (flat) or arc length per bin (curved), pixels, at the detector.
        detector: "flat" or "curved" (equi-angular, centred on the source).

    ``pseudo_inverse`` is fan-beam FBP, exact in the limit for a full turn of evenly spaced
    views; for short scans use the gradient / CG paths of ``solve``.
    """

    kind = "ct-fan"

    def __init__(self, image_size: int, angles, source_distance: float, detector_distance: float,
                 n_detectors: int | None = None, *, detector_spacing: float = 1.0,
                 detector_center: float | None = None, detector: str = "flat", circle: bool = True,
                 cache_bytes: int | None = None):
        if detector not in ("flat", "curved"):
            raise InputError(f"detector: expected 'flat' or 'curved', got {detector!r}")
        size = image_size if isinstance(image_size, int) and not isinstance(image_size, bool) else 0
        radius = size / 2 if circle else size / math.sqrt(2)
        r = _distance(source_distance, "source_distance", radius)
        dd = _distance(detector_distance, "detector_distance", -r)
        if n_detectors is None and isinstance(detector_spacing, (int, float)) and detector_spacing > 0:
            half_fan = math.asin(min(1.0, (radius + 1) / r))
            half = (r + dd) * (half_fan if detector == "curved" else math.tan(half_fan))
            n_detectors = 2 * math.ceil(half / detector_spacing) + 1
        self._fan = {"source_distance": r, "detector_distance": dd, "curved": detector == "curved"}
        check_angles(angles, "angles")
        super().__init__(size if size else image_size, angles, n_detectors, detector_spacing=detector_spacing,
                         detector_center=detector_center, circle=circle, cache_bytes=cache_bytes)

    def _projector(self, angles: torch.Tensor) -> RayTransform:
        return FanBeam(self.image_size, angles, **self._geometry, **self._fan)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {', '.join(f'{k}={v}' for k, v in self._fan.items())}"

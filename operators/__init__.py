"""Linear forward operators (installed as ``scoremed.operators``). They know nothing about SDEs.

Every operator is a ``torch.nn.Module`` with ``forward`` (A x), ``adjoint`` (A^H y) and
``pseudo_inverse``; decomposable ones (A = P(Λ) T) add ``transform``, ``inverse_transform``,
``mask`` and ``embed``. Operators compose (``A @ B``, ``A.H``, ``2 * A``, ``A + B``,
``Stack``) and cache ``A.norm()``. :func:`as_operator` turns an ``nn.Module``, a callable
or a deepinv physics object into an operator; :func:`scoremed.operators.testing.check_operator`
checks any of them. Capabilities have defaults on :class:`LinearOperator` (``support``,
``prox_l2`` where ``has_prox_l2``, ``decomposable``, ``complex_images``); callers never probe
with ``getattr``. See ``operators/base.py`` for the protocol.
"""
from .adapters import WrappedOperator, as_operator
from .base import Adjoint, Compose, Scaled, Stack, Sum
from .base import DecomposableOperator, LinearOperator
from .ct import CT, ParallelBeam, SparseViewCT, full_view_angles, sparse_view_angles
from .fanbeam import FanBeam, FanBeamCT
from .grayscale import Grayscale
from .inpainting import Inpainting, box_mask, half_mask, random_pixel_mask
from .mri import MRI
from .mri_masks import cartesian_mask, poisson_mask
from .multicoil import MultiCoilMRI, estimate_sensitivities, rss, sense_combine
from .primitives import FFT, Mask, Multiply

__all__ = [
    "LinearOperator", "DecomposableOperator", "as_operator", "WrappedOperator",
    "Compose", "Adjoint", "Scaled", "Sum", "Stack", "Multiply", "Mask", "FFT",
    "Inpainting", "Grayscale", "MRI", "MultiCoilMRI", "CT", "SparseViewCT", "FanBeamCT", "ParallelBeam", "FanBeam",
    "cartesian_mask", "poisson_mask", "box_mask", "random_pixel_mask", "half_mask",
    "sparse_view_angles", "full_view_angles",
    "estimate_sensitivities", "rss", "sense_combine",
]

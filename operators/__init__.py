"""Linear forward operators (installed as ``scoremed.operators``). They know nothing about SDEs.

Every operator is a ``torch.nn.Module`` with ``forward`` (A x), ``adjoint`` (A^H x) and
``pseudo_inverse``; decomposable ones (A = P(Λ) T) add ``transform``, ``inverse_transform``,
``mask`` and ``embed``. See ``operators/base.py`` for the protocol.
"""
from .base import DecomposableOperator, LinearOperator
from .ct import CT, full_view_angles, sparse_view_angles
from .grayscale import Grayscale
from .inpainting import Inpainting, box_mask, half_mask, random_pixel_mask
from .mri import MRI
from .mri_masks import cartesian_mask, poisson_mask
from .multicoil import MultiCoilMRI, estimate_sensitivities, rss, sense_combine

__all__ = [
    "LinearOperator", "DecomposableOperator",
    "Inpainting", "Grayscale", "MRI", "MultiCoilMRI", "CT",
    "cartesian_mask", "poisson_mask", "box_mask", "random_pixel_mask", "half_mask",
    "sparse_view_angles", "full_view_angles",
    "estimate_sensitivities", "rss", "sense_combine",
]

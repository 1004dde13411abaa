"""scoremed: score-based generative priors for inverse problems in medical imaging.

Public API (names are stable)::

    prior = scoremed.load_prior("mri-brain")          # shipped name, checkpoint or run folder
    x_hat = scoremed.solve(y, operator, prior=prior)  # reconstruction in the image domain
    samples = scoremed.sample(prior, n=4)             # unconditional samples
    bpd = scoremed.likelihood(x, prior)               # bits per dimension, per image
"""
from scoremed.analytic import gaussian_prior
from scoremed.denoising import denoiser_prior
from scoremed.errors import InputError
from scoremed.likelihood import decode, encode, likelihood
from scoremed.networks.published import import_checkpoint
from scoremed.prior import ScorePrior
from scoremed.priors import convert_checkpoint, load_prior, save_prior
from scoremed.sampling import SamplingResult, ode_sampler, pc_sampler, sample
from scoremed.sampling.methods import METHODS, Method, SolveSettings, register
from scoremed.sde import SDE, VESDE, VPSDE, ReverseSDE, subVPSDE
from scoremed.settings import settings_for
from scoremed.solve import sample_posterior, solve

__all__ = [
    "SDE", "VESDE", "VPSDE", "subVPSDE", "ReverseSDE", "ScorePrior", "InputError", "SamplingResult",
    "sample", "pc_sampler", "ode_sampler", "likelihood", "encode", "decode", "load_prior", "save_prior",
    "gaussian_prior", "denoiser_prior", "solve", "sample_posterior", "settings_for", "SolveSettings", "METHODS",
    "Method", "register",
    "import_checkpoint", "convert_checkpoint",
]

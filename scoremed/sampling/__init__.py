"""Sampling: schedules, predictors, correctors, the predictor–corrector loop, the probability-flow
ODE and the conditioning (measurement) steps that make every sampler a conditional one."""
from scoremed.sampling.cg import conjugate_gradient
from scoremed.sampling.conditioning import (Conditioning, ConsistencyStep, DDSStep, DPSGuidance, ProximalStep,
                                            project)
from scoremed.sampling.correctors import CORRECTORS, AnnealedLangevin, Corrector, Langevin, NoCorrector
from scoremed.sampling.ode import adaptive_options, ode_drift, ode_sampler
from scoremed.sampling.pc import CountingScore, DivergenceWatch, SamplingResult, pc_sampler
from scoremed.sampling.predictors import (PREDICTORS, DDIM, Ancestral, DiffPIR, DPMSolver2M, EulerMaruyama,
                                          NoPredictor, Predictor, ReverseDiffusion, pick)
from scoremed.sampling.schedules import time_grid, truncated
from scoremed.sampling.unconditional import check_prior, sample

__all__ = ["Conditioning", "ConsistencyStep", "DDSStep", "DPSGuidance", "ProximalStep", "conjugate_gradient",
           "project",
           "CORRECTORS", "AnnealedLangevin", "Corrector", "Langevin", "NoCorrector", "adaptive_options", "ode_drift",
           "ode_sampler", "CountingScore", "DivergenceWatch", "SamplingResult", "pc_sampler", "PREDICTORS", "DDIM",
           "Ancestral", "DiffPIR", "DPMSolver2M", "EulerMaruyama", "NoPredictor", "Predictor", "ReverseDiffusion",
           "pick",
           "time_grid", "truncated", "check_prior", "sample"]

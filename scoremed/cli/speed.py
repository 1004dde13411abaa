"""Command-line flags of the speed options, shared by the front ends.

``add_speed_arguments(parser)`` adds ``--precision``, ``--compile`` and ``--channels-last``
(GPU oriented; all off on the CPU by default); ``add_sampler_arguments(parser)`` adds the
fast-sampler flags ``--predictor``, ``--corrector``, ``--start`` and ``--t-start``.
``solve_options(args)`` turns the parsed flags into keyword arguments of
:func:`scoremed.solve` / :func:`scoremed.sample_posterior` (None = the prior's default).
"""
from __future__ import annotations

import argparse
from typing import Any

from scoremed.networks import COMPILE_MODES, PRECISIONS
from scoremed.sampling.methods import STARTS


def add_speed_arguments(parser: argparse.ArgumentParser, default_precision: str | None = None) -> None:
    g = parser.add_argument_group("speed (GPU; off on the CPU unless asked for)")
    g.add_argument("--precision", choices=PRECISIONS, default=default_precision,
                   help="network arithmetic: fp32, bf16 autocast, or auto = bf16 on CUDA, fp32 on the CPU "
                        "(default: the config's / fp32 for reconstruction)")
    g.add_argument("--compile", choices=COMPILE_MODES, default=None,
                   help="torch.compile mode; reduce-overhead also captures CUDA graphs (CUDA only) (default: off)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels-last memory format for the network (default: off)")


def add_sampler_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("fast sampling")
    g.add_argument("--predictor", default=None,
                   help="reverse_diffusion (default), euler_maruyama, ancestral, ddim, dpm2m (DPM-Solver++(2M))")
    g.add_argument("--corrector", default=None, help="langevin (default), annealed_langevin, none")
    g.add_argument("--start", choices=STARTS, default=None,
                   help="start from noise at T (default), or from the direct or the tuned classical reconstruction "
                        "perturbed to --t-start")
    g.add_argument("--t-start", type=float, default=None, help="start time for --start direct/classical, e.g. 0.3")


def speed_options(args: argparse.Namespace) -> dict[str, Any]:
    """The speed flags that were given, as keyword arguments."""
    return {k: v for k, v in {"precision": getattr(args, "precision", None), "compile": getattr(args, "compile", None),
                              "channels_last": getattr(args, "channels_last", None)}.items() if v is not None}


def solve_options(args: argparse.Namespace) -> dict[str, Any]:
    """Speed and fast-sampler flags that were given, as keyword arguments of ``scoremed.solve``."""
    options = speed_options(args)
    for key in ("predictor", "corrector", "start", "t_start"):
        if getattr(args, key, None) is not None:
            options[key] = getattr(args, key)
    return options

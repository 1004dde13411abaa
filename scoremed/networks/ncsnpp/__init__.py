"""NCSN++ / DDPM++ backbone in pure torch, compatible with score_sde_pytorch checkpoints."""
from scoremed.networks.ncsnpp.config import NCSNppConfig
from scoremed.networks.ncsnpp.model import NCSNpp, build_ncsnpp

__all__ = ["NCSNpp", "NCSNppConfig", "build_ncsnpp"]

"""Score networks: backbones behind one registry, score conventions, patch (resolution-free) wrappers."""
from scoremed.networks.backbones import BACKBONES, build_backbone
from scoremed.networks.patch import PatchScore, image_positions, patch_positions
from scoremed.networks.score_network import ScoreNetwork, build_score_network
from scoremed.networks.speed import COMPILE_MODES, PRECISIONS, FastScore, fast_score

__all__ = ["BACKBONES", "build_backbone", "ScoreNetwork", "build_score_network", "PatchScore", "image_positions",
           "patch_positions", "COMPILE_MODES", "PRECISIONS", "FastScore", "fast_score"]

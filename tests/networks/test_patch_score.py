"""PatchScore assembles a whole-image score from patches exactly where the answer is known."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from scoremed import VESDE, VPSDE
from scoremed.errors import InputError
from scoremed.networks import PatchScore, image_positions, patch_positions
from scoremed.utils import append_dims


class PositionGaussianScore(nn.Module):
    """Exact score of independent pixels x0 ~ N(mu(u, v), s^2) with a mean that depends on position.

    It is pointwise in (x, position), so any correct tiling with correct positions gives
    exactly the whole-image score, whatever the tile offsets and the background noise.
    """

    def __init__(self, sde, s: float = 0.3):
        super().__init__()
        self.sde, self.s = sde, s

    def forward(self, x, t, position):
        mu = 0.5 + 0.3 * torch.sin(3 * position[:, :1]) * torch.cos(2 * position[:, 1:])
        a, std = append_dims(self.sde.mean_coeff(t), x.ndim), append_dims(self.sde.marginal_std(t), x.ndim)
        return -(x - a * mu) / (a * a * self.s ** 2 + std * std)


@pytest.mark.parametrize("sde", [VESDE(sigma_max=5.0), VPSDE()], ids=["ve", "vp"])
@pytest.mark.parametrize("mode, context", [("tiles", 0), ("tiles", 4), ("full", 0)])
@pytest.mark.parametrize("size", [(16, 16), (23, 41), (8, 5)])
def test_assembled_score_equals_direct_evaluation(sde, mode, context, size):
    net = PositionGaussianScore(sde)
    score = PatchScore(net, patch_size=8, mode=mode, patch_batch=3, multiple=8, seed=1, context=context)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, *size, generator=g, dtype=torch.float64)
    t = torch.tensor([0.3, 0.8], dtype=torch.float64)
    direct = net(x, t, image_positions(2, *size).double())
    for _ in range(3):   # new random offsets every call
        torch.testing.assert_close(score(x, t), direct)


class BoxFilter(nn.Module):
    """A local, position-free network: the 3 x 3 mean with zero padding (receptive radius 1)."""
    sde = VESDE()

    def forward(self, x, t, position):
        return nn.functional.avg_pool2d(x, 3, stride=1, padding=1)


@pytest.mark.parametrize("context", [0, 4])
def test_context_removes_tile_seams(context):
    x = torch.randn(1, 1, 20, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    direct = BoxFilter()(x, None, None)[..., 1:-1, 1:-1]       # interior: no image border in reach
    score = PatchScore(BoxFilter(), patch_size=8, context=context, seed=2)
    assembled = score(x, torch.ones(1))[..., 1:-1, 1:-1]
    if context:
        torch.testing.assert_close(assembled, direct)
    else:                                                       # tile edges see zero padding
        assert (assembled - direct).abs().max() > 0.1


def test_tiles_cover_each_pixel_once_and_offsets_vary():
    seen = []

    class Recorder(nn.Module):
        sde = VESDE()

        def forward(self, x, t, position):
            seen.append(position[:, :, 0, 0].clone())
            return torch.ones_like(x)

    score = PatchScore(Recorder(), patch_size=4, patch_batch=100)
    x = torch.zeros(1, 1, 10, 10)
    out = score(x, torch.ones(1))
    assert torch.equal(out, torch.ones_like(x))
    corners = {tuple(c) for p in seen for c in p.tolist()}
    for _ in range(10):
        score(x, torch.ones(1))
    assert len({tuple(c) for p in seen for c in p.tolist()}) > len(corners)


def test_positions_are_pixel_centres_in_the_field_of_view():
    pos = patch_positions(torch.tensor([-2]), torch.tensor([3]), (4, 2), (8, 10))[0]
    rows = 2 * (torch.arange(-2, 2) + 0.5) / 8 - 1
    cols = 2 * (torch.arange(3, 5) + 0.5) / 10 - 1
    torch.testing.assert_close(pos[0], rows[:, None].expand(4, 2))
    torch.testing.assert_close(pos[1], cols[None, :].expand(4, 2))
    whole = image_positions(1, 8, 10)[0]
    assert whole[0].min() > -1 and whole[0].max() < 1 and whole.shape == (2, 8, 10)


def test_bad_arguments_are_named():
    with pytest.raises(InputError, match="patch mode"):
        PatchScore(PositionGaussianScore(VESDE()), 8, mode="overlap")
    with pytest.raises(InputError, match="context"):
        PatchScore(PositionGaussianScore(VESDE()), 8, context=2, multiple=8)
    with pytest.raises(InputError, match="2D images"):
        PatchScore(PositionGaussianScore(VESDE()), 8)(torch.zeros(1, 1, 4, 8, 8), torch.ones(1))


def test_reseed_makes_the_random_tiling_reproducible():
    class Edge(nn.Module):             # not pointwise: the result depends on the tile offsets
        sde = VESDE()

        def forward(self, x, t, position):
            return x - x.mean(dim=(-2, -1), keepdim=True)

    score = PatchScore(Edge(), patch_size=4)
    x, t = torch.randn(1, 1, 10, 10, generator=torch.Generator().manual_seed(0)), torch.ones(1)
    score.reseed(7)
    first = [score(x, t) for _ in range(3)]
    score.reseed(7)
    again = [score(x, t) for _ in range(3)]
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b)
    assert not torch.equal(first[0], first[1])


def test_seeded_solve_with_a_patch_prior_is_reproducible(smoke_patch_run):
    import scoremed
    from scoremed.operators import MRI, cartesian_mask

    prior = scoremed.load_prior(smoke_patch_run)
    op = MRI(cartesian_mask((40, 40), accel=2, seed=0))
    y = op(torch.rand(1, 1, 40, 40, generator=torch.Generator().manual_seed(1)))
    runs = [scoremed.solve(y, op, prior=prior, steps=4, seed=3, progress=False) for _ in range(2)]
    torch.testing.assert_close(runs[0], runs[1])

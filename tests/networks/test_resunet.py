"""The "resunet" backbone: shapes, input checks, conditioning, score-network plumbing and that it learns.

Not tested: positive homogeneity in the image input. Even bias-free, the noise-level map is an
input channel that is not scaled with the image, so it acts like a bias and the network is not
homogeneous at a fixed noise map (by design).
"""
from __future__ import annotations

import pytest
import torch

import scoremed
from scoremed.errors import InputError
from scoremed.networks import BACKBONES, build_backbone
from scoremed.networks.resunet import ResUNet, noise_scalar
from scoremed.networks.score_network import build_score_network
from scoremed.training.config import config_from_dict
from scoremed.training.losses import dsm_loss_given_noise


def _arch(**kw):
    return {"name": "resunet", "in_channels": 1, "position_channels": 0, "channels": [8, 16, 32],
            "num_res_blocks": 1, **kw}


def _randomise_tail(net: ResUNet, seed: int = 0) -> None:
    """Give the zero-initialised last conv random weights, so the output depends on everything."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net.tail.weight.copy_(0.1 * torch.randn(net.tail.weight.shape, generator=g))


def test_registered():
    assert "resunet" in BACKBONES
    assert isinstance(build_backbone(_arch()), ResUNet)


@pytest.mark.parametrize("in_channels, position_channels, channels, blocks, size", [
    (1, 0, [8, 16, 32], 1, (16, 16)),
    (1, 2, [8, 16, 32], 2, (32, 24)),
    (3, 0, [8, 16], [1, 2], (8, 20)),
    (2, 2, [4], 1, (6, 2)),
    (1, 2, [8, 16, 16, 32], 1, (16, 48)),
])
def test_output_has_the_image_shape_and_starts_at_zero(in_channels, position_channels, channels, blocks, size):
    net = build_backbone(_arch(in_channels=in_channels, position_channels=position_channels, channels=channels,
                               num_res_blocks=blocks))
    x = torch.randn(3, in_channels + position_channels, *size)
    out = net(x, torch.tensor([0.0, 500.0, 999.0]))
    assert out.shape == (3, in_channels, *size)
    assert torch.equal(out, torch.zeros_like(out))   # zero-initialised last conv
    _randomise_tail(net)
    out = net(x, torch.tensor([0.0, 500.0, 999.0]))
    assert out.shape == (3, in_channels, *size) and out.abs().amax() > 0 and torch.isfinite(out).all()


@pytest.mark.parametrize("size", [(12, 16), (16, 20), (7, 8)])
def test_sizes_not_divisible_by_the_stride_are_input_errors(size):
    net = build_backbone(_arch())   # 3 levels: stride 2 ** 3 = 8
    with pytest.raises(InputError, match=rf"multiples of 8 .*got {size[0]} x {size[1]}"):
        net(torch.zeros(1, 1, *size), torch.zeros(1))


def test_bad_inputs_and_architectures_are_input_errors():
    net = build_backbone(_arch(position_channels=2))
    with pytest.raises(InputError, match=r"expected an input \(B, 3, H, W\)"):
        net(torch.zeros(1, 1, 16, 16), torch.zeros(1))
    for bad in ({"channels": []}, {"channels": [8, 0]}, {"num_res_blocks": 0}, {"num_res_blocks": [1, 1]},
                {"time_label": "t"}, {"spatial_dims": 3}):
        with pytest.raises(InputError):
            build_backbone(_arch(**bad))


def test_bias_key_switches_all_conv_biases():
    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    free = [m for m in build_backbone(_arch()).modules() if isinstance(m, convs)]
    biased = [m for m in build_backbone(_arch(bias=True)).modules() if isinstance(m, convs)]
    assert free and all(m.bias is None for m in free)
    assert biased and all(m.bias is not None for m in biased)


def test_noise_scalar_is_well_scaled():
    assert torch.allclose(noise_scalar(torch.tensor([0.0, 999.0]), "999t"), torch.tensor([0.0, 1.0]))
    s = noise_scalar(torch.tensor([0.01, 1.0, 50.0]), "sigma")
    assert s.abs().max() < 1.2 and s[1] == 0 and (s.diff() > 0).all()


def test_label_conditions_each_example_independently():
    """No normalisation across the batch: a batch is the stack of its examples, and the label matters."""
    torch.manual_seed(0)
    net = build_backbone(_arch(position_channels=2, time_label="sigma"))
    _randomise_tail(net)
    with torch.no_grad():   # make the FiLM scales non-trivial too
        net.film[-1].weight.normal_(0, 0.3)
    x, label = torch.randn(3, 3, 16, 16), torch.tensor([0.02, 1.0, 40.0])
    batched = net(x, label)
    single = torch.cat([net(x[i:i + 1], label[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-6)
    assert (net(x, label.flip(0)) - batched).abs().amax() > 1e-3
    torch.testing.assert_close(net(x[:1].expand(2, -1, -1, -1), torch.tensor(1.0)),
                               net(x[:1].expand(2, -1, -1, -1), torch.ones(2)))   # a scalar label broadcasts


@pytest.mark.parametrize("time_label", ["999t", "sigma"])
def test_plugs_into_the_score_network_and_gradients_flow(time_label):
    sde = scoremed.VESDE(sigma_min=0.01, sigma_max=50.0)
    net = build_score_network(_arch(position_channels=2, time_label=time_label, input_scaling=True), sde)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 1, 16, 16, generator=g)
    t, z = torch.rand(4, generator=g) * 0.99 + 0.01, torch.randn(4, 1, 16, 16, generator=g)
    assert net(x0, t).shape == x0.shape
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(3):   # zero-initialised last layers (tail conv, FiLM output) pass gradients on one step later
        opt.zero_grad()
        dsm_loss_given_noise(net, sde, x0, t, z).mean().backward()
        opt.step()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().amax() > 0, name


def test_config_accepts_the_architecture_keys():
    cfg = config_from_dict({"data": {"patch_size": 64}, "model": {
        "name": "resunet", "channels": [64, 128, 256], "num_res_blocks": 2, "bias": False, "time_label": "sigma"}})
    arch = cfg.architecture()
    assert arch["name"] == "resunet" and arch["bias"] is False and arch["position_channels"] == 2
    net = build_backbone(arch)
    assert net.in_channels == 3 and net.out_channels == 1 and net.label_kind == "sigma"
    with pytest.raises(InputError, match="bias"):
        config_from_dict({"model": {"bias": "no"}})


def test_adam_steps_reduce_a_denoising_loss():
    """Predict the noise of smooth images at a few noise levels: held-out loss drops from 1 (zero output)."""
    g = torch.Generator().manual_seed(0)
    grid = torch.linspace(-1, 1, 16)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    freq, phase = torch.rand(8, 2, generator=g) * 2 + 0.5, torch.rand(8, 2, generator=g) * 6
    clean = (torch.sin(freq[:, :1, None] * 3 * xx + phase[:, :1, None])
             * torch.cos(freq[:, 1:, None] * 3 * yy + phase[:, 1:, None]))[:, None]
    sigmas = torch.tensor([0.1, 0.3, 1.0, 0.2, 0.5, 0.1, 0.3, 1.0])

    def loss(net, z):
        return ((net(clean + sigmas.view(-1, 1, 1, 1) * z, sigmas) - z) ** 2).mean()

    torch.manual_seed(0)
    net = build_backbone(_arch(channels=[16, 32], time_label="sigma"))
    z_eval = torch.randn(clean.shape, generator=g)
    with torch.no_grad():
        before = loss(net, z_eval).item()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        loss(net, torch.randn(clean.shape, generator=g)).backward()
        opt.step()
    with torch.no_grad():
        after = loss(net, z_eval).item()
    assert before == pytest.approx(1.0, abs=0.1)
    assert after < 0.5 * before, (before, after)   # ~0.3 over seeds

"""NCSN++ / DDPM++ port and the import of published score_sde_pytorch checkpoints.

The fixtures (tests/fixtures/ncsnpp, see its README) were made by running the reference
implementation on small random networks; they are the judge of numerical fidelity.
"""
from __future__ import annotations

import copy
import itertools
import json
import runpy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from scoremed.errors import InputError
from scoremed.networks.ncsnpp import NCSNppConfig, build_ncsnpp, fir
from scoremed.networks.published import (import_checkpoint, published_configs, read_reference_config,
                                         reference_architecture, reference_sde)
from scoremed.priors import convert_checkpoint

FIXTURES = Path(__file__).parent / "fixtures" / "ncsnpp"
CASES = ["ve_ncsnpp_residual", "ve_ncsnpp_skip_1ch", "vp_ddpmpp"]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def fixture(case: str):
    folder = FIXTURES / case
    return folder / "checkpoint.pth", folder / "config.json", load_file(str(folder / "io.safetensors"))


def times_of(prior, labels: torch.Tensor) -> torch.Tensor:
    """Invert the time-label convention: sigma(t) for VE, 999 t for VP."""
    sde = prior.sde
    if type(sde).__name__ == "VESDE":
        return torch.log(labels / sde.sigma_min) / torch.log(torch.tensor(sde.sigma_max / sde.sigma_min))
    return labels / 999.0


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny networks: one intra-op thread is fastest, and robust on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def priors():
    return {case: import_checkpoint(*fixture(case)[:2]) for case in CASES}


@pytest.mark.parametrize("case", CASES)
def test_network_reproduces_reference_output(priors, case):
    _, _, io = fixture(case)
    with torch.no_grad():
        out = priors[case].network.backbone(io["x"], io["labels"])
    assert rel_err(out, io["output"]) < 1e-4


@pytest.mark.parametrize("case", CASES)
def test_prior_score_follows_time_label_convention(priors, case):
    prior = priors[case]
    _, _, io = fixture(case)
    t = times_of(prior, io["labels"])
    with torch.no_grad():
        score = prior.score(io["x"], t)
    if case.startswith("ve"):
        expected = io["output"]
    else:
        expected = -io["output"] / prior.sde.marginal_std(t).reshape(-1, 1, 1, 1)
    assert rel_err(score, expected) < 1e-4
    assert prior.centered == (case == "vp_ddpmpp")
    assert prior.image_shape == tuple(io["x"].shape[1:])


def test_ema_weights_are_applied_in_definition_order(tmp_path):
    # the fixtures' EMA equals their raw weights; scramble the raw weights so only the EMA is right
    ckpt, config, io = fixture("ve_ncsnpp_skip_1ch")
    state = torch.load(ckpt, weights_only=True)
    state["model"] = {k: v if k.endswith("all_modules.0.W") or v.dtype != torch.float32 else torch.randn_like(v)
                      for k, v in state["model"].items()}  # W (Fourier features) is not trained, not in the EMA
    torch.save(state, tmp_path / "scrambled.pth")
    with torch.no_grad():
        ema = import_checkpoint(tmp_path / "scrambled.pth", config).network.backbone(io["x"], io["labels"])
        raw = import_checkpoint(tmp_path / "scrambled.pth", config, ema=False).network.backbone(io["x"], io["labels"])
    assert rel_err(ema, io["output"]) < 1e-4
    assert rel_err(raw, io["output"]) > 1e-2


@pytest.mark.parametrize("change, expected", [
    (lambda c: c["model"].update(nf=32), "shape differences"),
    (lambda c: c["data"].update(num_channels=1), "all_modules.3.weight"),
    (lambda c: c["model"].update(attn_resolutions=[16]), "missing keys"),
])
def test_mismatching_config_lists_the_differences(change, expected):
    ckpt, config, _ = fixture("ve_ncsnpp_residual")
    cfg = json.loads(config.read_text())
    change(cfg)
    with pytest.raises(InputError, match=expected) as info:
        import_checkpoint(ckpt, cfg)
    assert "Does the config match" in str(info.value)


def test_checkpoint_is_never_unpickled(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "payload": copy.copy}, path)  # a global that weights_only refuses
    with pytest.raises(InputError, match="weights_only"):
        import_checkpoint(path, FIXTURES / "vp_ddpmpp" / "config.json")


def test_bad_config_values_are_input_errors():
    cfg = json.loads((FIXTURES / "vp_ddpmpp" / "config.json").read_text())
    for path, value, match in [(("model", "progressive"), "sideways", "progressive"),
                               (("model", "nf"), None, "nf"), (("sde",), "edm", "sde")]:
        bad = copy.deepcopy(cfg)
        target = bad if len(path) == 1 else bad[path[0]]
        if value is None:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        with pytest.raises(InputError, match=match):
            import_checkpoint(FIXTURES / "vp_ddpmpp" / "checkpoint.pth", bad)


def test_convert_then_load_prior(tmp_path, priors):
    import scoremed

    main = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "convert_checkpoint.py"))["main"]
    ckpt, config, io = fixture("ve_ncsnpp_skip_1ch")
    assert main([str(ckpt), str(config), "--out", str(tmp_path / "knee")]) == 0
    prior = scoremed.load_prior(tmp_path / "knee.safetensors")
    t = times_of(prior, io["labels"])
    with torch.no_grad():
        assert rel_err(prior.score(io["x"], t), io["output"]) < 1e-4
    assert prior.image_shape == (1, 32, 32) and not prior.centered
    written = convert_checkpoint(*fixture("vp_ddpmpp")[:2], tmp_path / "vp")
    assert scoremed.load_prior(written).centered


# -- architecture options the fixtures do not cover -------------------------------------------
def tiny_config(**model) -> dict:
    base = dict(nf=8, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[4], scale_by_sigma=True, fir=True,
                skip_rescale=True, resblock_type="biggan", progressive="none", progressive_input="none",
                embedding_type="fourier", sigma_min=0.01, sigma_max=50.0, num_scales=100)
    return {"data": {"image_size": 8, "num_channels": 2, "centered": False}, "model": {**base, **model}}


@pytest.mark.parametrize("resblock, progressive, progressive_input", list(itertools.product(
    ["ddpm", "biggan"], ["none", "output_skip", "residual"], ["none", "input_skip", "residual"])))
def test_every_option_combination_runs_and_round_trips(resblock, progressive, progressive_input):
    torch.manual_seed(0)
    for fir_on, combine, embedding in [(True, "sum", "fourier"), (False, "cat", "positional")]:
        cfg = tiny_config(resblock_type=resblock, progressive=progressive, progressive_input=progressive_input,
                          fir=fir_on, progressive_combine=combine, embedding_type=embedding)
        net = build_ncsnpp(cfg).eval()
        labels = torch.tensor([0.5, 20.0]) if embedding == "fourier" else torch.tensor([3.0, 70.0])
        x = torch.rand(2, 2, 8, 8)
        with torch.no_grad():
            out = net(x, labels)
        assert out.shape == x.shape and torch.isfinite(out).all()
        twin = build_ncsnpp(cfg)
        twin.load_state_dict(net.state_dict())  # same names and shapes from the same config
        with torch.no_grad():
            assert torch.equal(twin.eval()(x, labels), out)


def test_fused_fir_resampling_matches_unfused_away_from_borders():
    torch.manual_seed(0)
    x, w, k = torch.randn(1, 2, 12, 12), torch.randn(3, 2, 3, 3), (1, 3, 3, 1)
    up = fir.upsample_conv_2d(x, w, k) - F.conv2d(fir.upsample_2d(x, k), w, padding=1)
    down = fir.conv_downsample_2d(x, w, k) - fir.downsample_2d(F.conv2d(x, w, padding=1), k)
    assert up[..., 3:-3, 3:-3].abs().max() < 1e-5 and down[..., 2:-2, 2:-2].abs().max() < 1e-5
    assert fir.upsample_2d(torch.ones(1, 1, 4, 4), k)[..., 2:-2, 2:-2].allclose(torch.ones(1, 1, 4, 4))


@pytest.mark.parametrize("name", published_configs())
def test_published_configs_are_complete(name):
    cfg = read_reference_config(name)
    sde = reference_sde(cfg)
    arch = reference_architecture(cfg)
    parsed = NCSNppConfig.from_dict(arch)
    assert sde.N == parsed.num_scales and parsed.image_size in (32, 256, 320, 1024)
    assert arch["time_label"] == ("sigma" if cfg["sde"] == "vesde" else "999t")


# -- imported priors in the reconstruction loop ------------------------------------------------
@pytest.mark.parametrize("case", ["ve_ncsnpp_residual", "vp_ddpmpp", "ve_ncsnpp_skip_1ch"])
def test_short_solve_with_imported_prior(priors, case):
    from scoremed.operators import MRI, Inpainting, cartesian_mask
    from scoremed.solve import solve

    prior = priors[case]
    _, _, io = fixture(case)
    x = io["x"][:1]
    if prior.channels == 3:
        mask = torch.ones(32, 32)
        mask[8:24, 8:24] = 0
        operator = Inpainting(mask)
    else:
        operator = MRI(cartesian_mask((32, 32), accel=4, seed=0))
    y = operator(x)
    # VP: the DDPM discretisation needs beta_max / steps < 1
    x_hat = solve(y, operator, prior=prior, steps=25, seed=0, progress=False)
    assert x_hat.shape == x.shape and torch.isfinite(x_hat).all()
    if prior.channels == 3:  # known pixels are kept exactly
        assert torch.allclose(x_hat * mask, x * mask, atol=1e-5)

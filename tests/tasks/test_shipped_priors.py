"""The shipped priors load by name, are resolution-free patch priors, and a short solve of their tuning
task on their native-resolution test image beats the direct reconstruction."""
import pytest

import scoremed
from scoremed.apps.metrics import image_metrics
from scoremed.data import channels_of, default_test_image
from scoremed.priors import shipped_priors
from scoremed.tasks import make_operator, mri

SHIPPED = shipped_priors()


@pytest.mark.slow
@pytest.mark.parametrize("shipped", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_prior_loads_and_beats_the_direct_reconstruction(shipped):
    name = shipped.name
    prior = scoremed.load_prior(name)
    assert prior.image_shape == (channels_of(name), None, None) and prior.resolution_free and prior.name == name
    assert prior.metadata["training"]["step"] > 1000
    assert prior.metadata["default_method"] in prior.solve_defaults
    truth = default_test_image(name, native=True)[None]
    if truth.shape[-1] > 256:           # the 512 x 512 phantom, halved to keep the test short
        truth = truth[..., ::2, ::2]
    operator = make_operator(shipped.task, tuple(truth.shape[1:]), shipped.options)
    y = operator(truth)
    x_hat = scoremed.solve(y, operator, prior=prior, steps=8, seed=0, progress=False)
    assert x_hat.shape == truth.shape
    direct = operator.pseudo_inverse(y)
    assert image_metrics(truth[0], x_hat[0])["psnr"] > image_metrics(truth[0], direct[0])["psnr"] + 1.0


def test_solve_without_a_prior_picks_the_shipped_default(caplog):
    truth = default_test_image("mri-brain", native=True)[None, :, 64:192, 64:192]
    operator = make_operator("mri", (1, 128, 128), mri.Options(accel=4))
    with caplog.at_level("INFO", logger="scoremed"):
        x_hat = scoremed.solve(operator(truth), operator, steps=3, progress=False)
    assert x_hat.shape == (1, 1, 128, 128)
    assert "mri-brain" in caplog.text

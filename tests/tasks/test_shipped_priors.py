"""The three shipped priors load by name, have their documented shapes, and a short solve on
their shipped test image beats the direct reconstruction."""
import pytest
import torch

import scoremed
from scoremed.apps.metrics import image_metrics
from scoremed.data import default_test_image
from scoremed.tasks import ct, inpaint, make_operator, mri

CASES = [("mri-brain", (1, 64, 64), "mri", mri.Options(accel=4)),
         ("ct-phantom", (1, 64, 64), "ct", ct.Options(views=23)),
         ("natural", (3, 64, 64), "inpaint", inpaint.Options(mask_kind="random"))]


@pytest.mark.parametrize("name,shape,op,options", CASES, ids=[c[0] for c in CASES])
def test_shipped_prior_loads_and_beats_the_direct_reconstruction(name, shape, op, options):
    prior = scoremed.load_prior(name)
    assert prior.image_shape == shape and prior.name == name
    assert prior.metadata["training"]["step"] > 1000
    assert "consistency" in prior.solve_defaults
    truth = default_test_image(name)[None]
    operator = make_operator(op, shape, options)
    y = operator(truth)
    x_hat = scoremed.solve(y, operator, prior=prior, steps=40, start="direct", t_start=0.3, seed=0, progress=False)
    direct = operator.pseudo_inverse(y)
    assert image_metrics(truth[0], x_hat[0])["psnr"] > image_metrics(truth[0], direct[0])["psnr"] + 1.0


def test_solve_without_a_prior_picks_the_shipped_default(caplog):
    truth = default_test_image("mri-brain")[None]
    operator = make_operator("mri", (1, 64, 64), mri.Options(accel=4))
    with caplog.at_level("INFO", logger="scoremed"):
        x_hat = scoremed.solve(operator(truth), operator, steps=5, progress=False)
    assert x_hat.shape == (1, 1, 64, 64)
    assert "mri-brain" in caplog.text

"""Quality/native benchmark rows say what they ran: the method and where its reverse process started."""
from __future__ import annotations

import scoremed
from conftest import smooth_gaussian
from scoremed.benchmarks.quality import Task, compare_methods
from scoremed.tasks import inpaint


def test_rows_name_the_method_and_its_start():
    mean, cov = smooth_gaussian(8)
    prior = scoremed.gaussian_prior(scoremed.VESDE(sigma_max=5.0), mean, cov, (1, 8, 8))
    prior.solve_defaults = {"diffpir": {"start": "classical", "t_start": 0.3}}
    truth = mean.reshape(1, 1, 8, 8).float().repeat(2, 1, 1, 1)
    task = Task("toy", "inpaint", "natural", inpaint.Options(mask_kind="random", seed=1))
    rows = compare_methods(task, "toy", truth, prior, {"diffpir": [4], "dds": [4]}, None)
    assert [(r[1], r[2]) for r in rows] == [("direct", 0), ("biharmonic (skimage)", 0),
                                            ("scoremed diffpir from classical@0.3", 4), ("scoremed dds from noise", 4)]

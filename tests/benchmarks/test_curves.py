"""benchmark curves: the default chosen from a curve, the crop, a measured curve on the smoke prior and
what --store writes."""
from __future__ import annotations

import json
import math

import pytest
import torch

from scoremed.benchmarks.curves import (centre_crop, cg_step_cost, choose_default, curve_points, curve_task,
                                        curves_markdown, parse_method, plot_curves, store_choice)
from scoremed.errors import InputError


def point(method, nfe, psnr):
    return {"method": method, "nfe": nfe, "psnr": psnr, "ssim": 0.5, "seconds": 1.0}


def test_the_default_is_the_cheapest_point_near_the_best():
    points = [point("dds", 25, 27.0), point("dds", 50, 28.6), point("consistency", 1000, 29.0),
              point("dps", 50, 28.8), point("diffpir", 50, math.nan)]
    assert choose_default(points, 0.5) == point("dps", 50, 28.8)
    assert choose_default(points, 0.0)["nfe"] == 1000
    assert choose_default(points, 5.0)["nfe"] == 25
    assert choose_default(points, 0.0, max_nfe=100) == point("dps", 50, 28.8)
    with pytest.raises(InputError, match="no run of at most"):
        choose_default([point("dps", 50, math.nan)])


def test_method_names_with_a_start():
    assert parse_method("dds") == ("dds", {"start": "noise"})
    assert parse_method("diffpir@classical-0.3") == ("diffpir", {"start": "classical", "t_start": 0.3})
    assert parse_method("dds@direct-0.5") == ("dds", {"start": "direct", "t_start": 0.5})
    for bad in ("ddx", "diffpir@tv-0.3", "diffpir@classical", "diffpir@classical-x"):
        with pytest.raises(InputError, match="method: expected one of"):
            parse_method(bad)


def test_centre_crop_takes_the_middle_window():
    images = torch.arange(2 * 6 * 8, dtype=torch.float32).reshape(1, 2, 6, 8)
    torch.testing.assert_close(centre_crop(images, 4), images[..., 1:5, 2:6])
    assert centre_crop(images, None) is images and centre_crop(images, 9) is images


def test_curve_on_the_smoke_prior_cost_figure_and_stored_choice(tmp_path, smoke_run, smoke_prior):
    from scoremed.cli import main

    task = curve_task("mri-brain")
    truth = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))   # order-independent
    points = curve_points(task, smoke_prior, truth, {"dds": [4, 8], "diffpir": [4], "diffpir@classical-0.4": [4]})
    assert [(p["method"], p["nfe"]) for p in points] == [("dds", 4), ("dds", 8), ("diffpir", 4),
                                                         ("diffpir@classical-0.4", 4)]
    assert all(math.isfinite(p["psnr"]) and -1 <= p["ssim"] <= 1 for p in points)   # noise truth: SSIM may be < 0
    cost = cg_step_cost(smoke_prior, task, (1, 16, 16), iterations=5, repeats=1)
    assert cost["network_s"] > 0 and cost["cg_s"] > 0 and cost["ratio"] == pytest.approx(
        cost["cg_s"] / cost["network_s"], rel=1e-3)
    plot_curves(points, "smoke", tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    record = {"task": task.name, "images": 2, "size": "16x16", "how": "central crop", "tolerance": 0.5, "points": points,
              "choice": choose_default(points), "cg_cost": cost}
    assert "**(default)**" in curves_markdown({"smoke": record})
    assert main(["export", str(smoke_run), "--name", "smoke", "--out-dir", str(tmp_path)]) == 0
    store_choice("smoke", record, tmp_path)
    meta = json.loads((tmp_path / "smoke.json").read_text())
    method = parse_method(record["choice"]["method"])[0]
    assert meta["default_method"] == method
    assert meta["solve_defaults"][method]["steps"] == record["choice"]["nfe"]
    assert meta["curves"]["mri-4x"]["points"] == points
    store_choice("smoke", {**record, "choice": points[-1]}, tmp_path)   # a classical start is stored as "auto"
    stored = json.loads((tmp_path / "smoke.json").read_text())["solve_defaults"]["diffpir"]
    assert stored == {"steps": 4, "start": "auto", "t_start": 0.4}
    store_choice("smoke", {**record, "choice": points[2]}, tmp_path)    # ... and removed by a noise start
    assert json.loads((tmp_path / "smoke.json").read_text())["solve_defaults"]["diffpir"] == {"steps": 4}


def test_validation_images_are_cropped_except_ct_which_is_resampled():
    from scoremed.benchmarks.curves import validation_images
    from scoremed.benchmarks.tuning import split_images

    native = split_images("ct-phantom", "val", 1)[0]
    small = validation_images("ct-phantom", 1, 64)
    assert small.shape == (1, 1, 64, 64)
    mean = torch.nn.functional.avg_pool2d(native, native.shape[-1] // 64)   # whole slice, not a window of it
    assert (small - mean).abs().mean() < 0.02 and (small - centre_crop(native, 64)).abs().mean() > 0.05

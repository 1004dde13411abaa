"""Benchmark reports: Markdown tables, sections replaced in place, and a speed report whose every
comparison is computed from the measurements (change the numbers, the verdicts follow)."""
from __future__ import annotations

import copy

from scoremed.benchmarks.report import markdown_table, write_report_section
from scoremed.benchmarks.speed_report import report_from_raw


def test_markdown_table_and_sections_replaced_in_place(tmp_path):
    assert markdown_table(["a", "b"], [[1, 0.123456], ["x", 2.0]]) == "| a | b |\n|---|---|\n| 1 | 0.1235 |\n| x | 2 |"
    path = tmp_path / "docs" / "report.md"
    write_report_section(path, "one", "first")
    write_report_section(path, "two", "second")
    write_report_section(path, "one", "first again")
    text = path.read_text()
    assert text.count("<!-- begin one -->") == 1 and "first again" in text and "first\n" not in text
    assert text.index("first again") < text.index("second")


PC = "consistency: reverse_diffusion + langevin (snr 0.16) from noise"
DEFAULT = "diffpir: diffpir from classical@0.2"
RAW = {
    "quick": True, "prior_step": 100, "cuda": False, "image_size": [64, 64], "targets": {"overhead": 1.05}, "overhead_steps": 5,
    "machine": {"description": "test machine", "cpus": 2, "n_images": 2, "load_start": 0.5, "load_end": 0.7},
    "overhead": [{"label": DEFAULT, "nfe": 10, "solve_cpu": 1.0, "net_cpu": 0.98, "sampler_cpu": 0.02,
                  "ratio_cpu": 1.02, "ratio_wall": 1.03, "ratio_decomposed": 1.02}],
    "training": [{"label": "1 process", "processes": 1, "threads": 1, "images_per_s": 10.0},
                 {"label": "torchrun", "processes": 2, "threads": 1, "images_per_s": 18.0}],
    "curve": [{"sampler": "direct (zero-filled)", "steps": 0, "nfe": 0, "psnr": 20.0, "ssim": 0.5},
              {"sampler": PC, "role": "baseline", "steps": 500, "nfe": 1000, "psnr": 25.0, "ssim": 0.7,
               "wall_per_slice": 10.0, "cpu_per_slice": 8.0},
              {"sampler": PC, "role": "baseline", "steps": 1000, "nfe": 2000, "psnr": 26.0, "ssim": 0.72,
               "wall_per_slice": 20.0, "cpu_per_slice": 16.0},
              {"sampler": DEFAULT, "role": "default", "steps": 20, "nfe": 20, "psnr": 27.5, "ssim": 0.75,
               "wall_per_slice": 0.2, "cpu_per_slice": 0.16}],
}


def test_speed_report_states_figures_and_computes_every_comparison():
    text = report_from_raw(RAW)
    assert "Target: decomposed overhead ≤ 1.05. Measured worst: 1.020 (met)" in text
    assert "Two DDP processes: 1.80× the single-process rate" in text
    assert f"Baseline: {PC}, 1000 steps, 26.00 dB at NFE 2000" in text
    assert f"Fewest evaluations reaching it: {DEFAULT}, 20 steps" in text and "(100.0× fewer)" in text
    assert "Default vs baseline: 1% of the evaluations, 100.0× less CPU time per slice, +1.50 dB PSNR" in text
    assert f"| default (`solve(y, op)`): {DEFAULT}, 20 steps |" in text
    assert "no CUDA device" in text and "test images of `mri-brain` (test split) at 64×64" in text
    slower = copy.deepcopy(RAW)
    slower["overhead"][0]["ratio_decomposed"] = 1.2
    slower["curve"][3]["psnr"] = 21.0
    text = report_from_raw(slower)
    assert "Measured worst: 1.200 (not met)" in text and "No other setting reached it." in text

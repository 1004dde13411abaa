"""The "speed" section of the benchmark report, from the raw measurements of
:func:`scoremed.benchmarks.speed.run` (or a saved ``--json`` file).

The report states the measured figures, the settings and the targets; every comparison
(target met, speed-up, fewest evaluations reaching a baseline) is computed from the numbers.
"""
from __future__ import annotations

from scoremed.benchmarks.report import markdown_table


def _role(curve: list[dict], role: str) -> dict | None:
    """The row of ``role`` ("default" / "baseline") with the most steps."""
    return max((r for r in curve if r.get("role") == role), key=lambda r: r["steps"], default=None)


def _machine(raw: dict) -> list[str]:
    m = raw["machine"]
    note = f" Note: {raw['note']}." if raw.get("note") else ""
    return [f"{m['description']}. {'Quick mode. ' if raw['quick'] else ''}Shipped prior `mri-brain` at training "
            f"step {raw.get('prior_step')}. 1-minute load average {m['load_start']:.1f} at the start and "
            f"{m['load_end']:.1f} at the end on {m.get('cpus', '?')} logical CPUs (wall times include other jobs; "
            f"CPU times do not).{note}", ""]


def _overhead(raw: dict) -> list[str]:
    if not raw.get("overhead"):
        return []
    target = raw.get("targets", {}).get("overhead")
    rows = [[r["label"], r["nfe"], f"{r['solve_cpu']:.2f}", f"{r['net_cpu']:.2f}", f"{r['sampler_cpu']:.3f}",
             f"{r['ratio_cpu']:.3f}", f"{r['ratio_wall']:.3f}", f"{r['ratio_decomposed']:.3f}"] for r in raw["overhead"]]
    worst = max(r["ratio_decomposed"] for r in raw["overhead"])
    lines = ["### Sampler overhead", "",
             f"One slice, MRI 4× random Cartesian, {raw.get('overhead_steps')} predictor steps. Overhead = time of "
             "the full `solve` / time of the same number of network evaluations alone, median of repeated runs: "
             "*direct* = full solve / network only (interleaved pairs); *decomposed* = 1 + (the same solve with a "
             "near-free analytic score) / network only.", "",
             markdown_table(["sampler", "NFE", "solve CPU s", "network-only CPU s", "sampler-only CPU s",
                             "overhead, direct (CPU)", "overhead, direct (wall)", "overhead, decomposed (CPU)"], rows),
             ""]
    if target is not None:
        lines += [f"- Target: decomposed overhead ≤ {target}. Measured worst: {worst:.3f} "
                  f"({'met' if worst <= target else 'not met'}).", ""]
    return lines


def _training(raw: dict) -> list[str]:
    runs = raw.get("training")
    if not runs:
        return []
    base = runs[0]["images_per_s"]
    rows = [[r["label"], r["processes"], r["threads"], f"{r['images_per_s']:.1f}",
             " / ".join(f"{v:.1f}" for v in r.get("all", [r["images_per_s"]])), f"{r['images_per_s'] / base:.2f}×",
             f"{r.get('load_before', float('nan')):.1f}"] for r in runs]
    lines = ["### Training throughput", "",
             "`scoremed train --config mri-brain` on the CPU, images/s over the logged intervals after the first; "
             "the same global batch in every run.", "",
             markdown_table(["run", "processes", "threads per process", "images/s (median)", "each run",
                             "vs 1 process × 1 thread", "mean load average before the runs"], rows), ""]
    ddp = next((r for r in runs if r["processes"] == 2), None)
    if ddp is not None:
        lines += [f"- Two DDP processes: {ddp['images_per_s'] / base:.2f}× the single-process rate "
                  f"(ideal: 2×).", ""]
    return lines


def _quality(raw: dict) -> list[str]:
    curve = raw.get("curve")
    if not curve:
        return []
    n_images = raw["machine"]["n_images"]
    size = "×".join(map(str, raw.get("image_size", ["?"])))
    lines = ["### Reconstruction: seconds per slice and PSNR", "",
             f"{n_images} test images of `mri-brain` (test split) at {size}, one 4× random Cartesian mask "
             "(8 % centre), all images in one batch; seconds per slice = batch time / images.", ""]
    default, baseline = _role(curve, "default"), _role(curve, "baseline")
    rows = [[f"{label}: {r['sampler']}, {r['steps']} steps", r["nfe"], f"{r['psnr']:.2f}", f"{r['ssim']:.3f}",
             f"{r['wall_per_slice']:.2f}", f"{r['cpu_per_slice']:.2f}"]
            for label, r in (("default (`solve(y, op)`)", default), ("baseline", baseline)) if r is not None]
    lines += [markdown_table(["setting", "NFE", "PSNR dB", "SSIM", "s/slice (wall)", "s/slice (CPU)"], rows), ""]
    if default and baseline:
        lines += [f"- Default vs baseline: {default['nfe'] / baseline['nfe']:.0%} of the evaluations, "
                  f"{baseline['cpu_per_slice'] / default['cpu_per_slice']:.1f}× less CPU time per slice, "
                  f"{default['psnr'] - baseline['psnr']:+.2f} dB PSNR.", ""]
    lines += ["### PSNR against the number of score evaluations", "",
              "Same images and mask. NFE = score-network evaluations per image (PC: predictor + corrector per step).",
              "", markdown_table(["sampler", "steps", "NFE", "PSNR dB", "SSIM"],
                                 [[r["sampler"], r["steps"], r["nfe"], f"{r['psnr']:.2f}", f"{r['ssim']:.3f}"]
                                  for r in curve]), ""]
    if baseline:
        better = sorted((r for r in curve if r["nfe"] and r is not baseline and r["psnr"] >= baseline["psnr"]),
                        key=lambda r: r["nfe"])
        b = better[0] if better else None
        lines.append(f"- Baseline: {baseline['sampler']}, {baseline['steps']} steps, {baseline['psnr']:.2f} dB at NFE "
                     f"{baseline['nfe']}. "
                     + (f"Fewest evaluations reaching it: {b['sampler']}, {b['steps']} steps, NFE {b['nfe']} "
                        f"({baseline['nfe'] / b['nfe']:.1f}× fewer)." if b else "No other setting reached it."))
    direct = curve[0]
    best = max(curve[1:], key=lambda r: r["psnr"], default=None)
    if best is not None:
        lines.append(f"- Direct reconstruction {direct['psnr']:.2f} dB; best measured {best['psnr']:.2f} dB "
                     f"({best['sampler']}, {best['steps']} steps, {best['psnr'] - direct['psnr']:+.2f} dB).")
    return lines + [""]


def report_from_raw(raw: dict) -> str:
    """The markdown of the "speed" section."""
    lines = ["## Speed (`scoremed benchmark speed`)", "", *_machine(raw)]
    if not raw.get("cuda"):
        lines += ["GPU speed options (bf16 autocast, `torch.compile`, channels-last) were not measured: no CUDA "
                  "device in this run.", ""]
    return "\n".join([*lines, *_overhead(raw), *_training(raw), *_quality(raw)]).rstrip() + "\n"

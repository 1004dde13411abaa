"""Benchmark the forward operators against skimage / NumPy and against one score-network call.

For every operator, image size (64², 128², 256²) and batch (1, 8): the time of one
forward + adjoint call (CT also: forward alone and FBP), the same work done with the
reference implementation (skimage radon/iradon looped over the batch, NumPy FFT), and the
cost as a percentage of one evaluation of the reference score network (MONAI
DiffusionModelUNet at the same size and channels). Writes the "operators" section of
docs/benchmarks.md.

    python scripts/benchmark_operators.py [--quick] [--threads N] [--no-report]
"""
from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import torch
from skimage.transform import iradon, radon

from scoremed.operators import (CT, MRI, Grayscale, Inpainting, MultiCoilMRI, cartesian_mask,
                                full_view_angles, random_pixel_mask, sparse_view_angles)
from scoremed.report import markdown_table, write_report_section

N_COILS = 8
SPARSE_VIEWS = 30


def timed(fn, min_time: float, max_reps: int = 50, min_reps: int = 3) -> float:
    """Best (minimum) wall time of one call of ``fn`` in ms after one warm-up call; the minimum
    is the least sensitive to other processes sharing the CPU."""
    fn()
    times, start = [], time.perf_counter()
    while len(times) < max_reps and (time.perf_counter() - start < min_time or len(times) < min_reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def network_ms(n: int, batch: int, channels: int, min_time: float) -> float:
    from monai.networks.nets import DiffusionModelUNet

    net = DiffusionModelUNet(spatial_dims=2, in_channels=channels, out_channels=channels, channels=(32, 64, 64),
                             attention_levels=(False, False, True), num_res_blocks=1, num_head_channels=32,
                             norm_num_groups=16).eval()
    x, t = torch.randn(batch, channels, n, n), torch.randint(0, 1000, (batch,))
    with torch.no_grad():
        return timed(lambda: net(x, t), min_time, max_reps=3, min_reps=1)


def fft2c_np(x: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def ifft2c_np(k: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def fwd_adj(op):
    return lambda x: op.adjoint(op(x))


def cases(n: int, batch: int, cts: dict[str, CT]):
    """(label, channels, torch fn, input, reference label, reference fn | None)."""
    mask = cartesian_mask((n, n), 4, seed=0)
    m = mask.numpy()
    maps = torch.randn(N_COILS, n, n, dtype=torch.complex64)
    maps_np = maps.numpy()
    gray, rgb = torch.rand(batch, 1, n, n), torch.rand(batch, 3, n, n)
    full_deg = np.rad2deg(full_view_angles(180).numpy())
    ct_full, ct_sparse = cts["full"], cts["sparse"]
    sino = ct_full(gray)

    def np_mri(x):
        return ifft2c_np(fft2c_np(x) * m).real

    def np_multicoil(x):
        k = fft2c_np(maps_np * x) * m
        return (maps_np.conj() * ifft2c_np(k)).sum(axis=1, keepdims=True).real

    def loop(fn, arr):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [fn(a) for a in arr[:, 0]]

    return [
        ("Inpainting fwd+adj", 3, fwd_adj(Inpainting(random_pixel_mask((n, n), seed=0))), rgb, "", None),
        ("Grayscale fwd+adj", 3, fwd_adj(Grayscale()), rgb, "", None),
        ("MRI fwd+adj", 1, fwd_adj(MRI(mask)), gray, "NumPy FFT", lambda: np_mri(gray.numpy())),
        (f"MultiCoilMRI ({N_COILS} coils) fwd+adj", 1, fwd_adj(MultiCoilMRI(mask, maps)), gray, "NumPy FFT",
         lambda: np_multicoil(gray.numpy())),
        ("CT 180 views forward", 1, ct_full, gray, "skimage radon",
         lambda: loop(lambda a: radon(a, full_deg, circle=True), gray.numpy())),
        ("CT 180 views fwd+adj", 1, fwd_adj(ct_full), gray, "", None),
        (f"CT {SPARSE_VIEWS} views fwd+adj", 1, fwd_adj(ct_sparse), gray, "", None),
        ("CT 180 views FBP", 1, ct_full.pseudo_inverse, sino, "skimage iradon",
         lambda: loop(lambda s: iradon(s.T, full_deg), sino.numpy())),
        (f"CT {SPARSE_VIEWS} views transform+inverse", 1, lambda x: ct_sparse.inverse_transform(ct_sparse.transform(x)),
         gray, "", None),
    ]


def run(sizes: list[int], batches: list[int], min_time: float) -> tuple[list[list[object]], list[str]]:
    rows, notes = [], []
    for n in sizes:
        t0 = time.perf_counter()
        cts = {"full": CT(n, full_view_angles(180)), "sparse": CT(n, sparse_view_angles(SPARSE_VIEWS))}
        notes.append(f"CT operators at {n}² (180 + {SPARSE_VIEWS} views, matrices built once): "
                     f"{time.perf_counter() - t0:.2f} s to construct")
        for batch in batches:
            nets = {c: network_ms(n, batch, c, min_time) for c in (1, 3)}
            for label, channels, fn, x, ref_label, ref in cases(n, batch, cts):
                with torch.no_grad():
                    ms = timed(lambda: fn(x), min_time)
                ref_ms = timed(ref, min_time, max_reps=10) if ref else None
                row = [label, f"{n}²", batch, ms, ref_label or "-", "-" if ref_ms is None else ref_ms,
                       "-" if ref_ms is None else f"{ref_ms / ms:.1f}×", nets[channels], 100 * ms / nets[channels]]
                rows.append(row)
                print(" | ".join(str(round(v, 3)) if isinstance(v, float) else str(v) for v in row), flush=True)
    return rows, notes


def summary(rows: list[list[object]]) -> list[str]:
    radon_rows = [r for r in rows if r[0] == "CT 180 views forward" and r[2] > 1]
    speedups = ", ".join(f"{r[1]}: {r[5] / r[3]:.1f}×" for r in radon_rows)
    met = all(r[5] / r[3] >= 5 for r in radon_rows)
    worst = max(rows, key=lambda r: r[8])
    over = sorted({f"{r[0]} ({r[1]}, B={r[2]}): {r[8]:.1f} %" for r in rows if r[8] >= 5})
    return [
        f"- Batched torch CT projector vs skimage radon looped over the batch (B = {radon_rows[0][2]}): "
        f"{speedups} — target ≥ 5×: {'met' if met else 'NOT met'}.",
        f"- Largest operator cost relative to one network evaluation: {worst[8]:.1f} % ({worst[0]}, {worst[1]}, "
        f"B={worst[2]}) — target < 5 %: {'met' if not over else 'NOT met for ' + '; '.join(over)}.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 64² and 128² only, shorter timing")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1, like NumPy)")
    parser.add_argument("--no-report", action="store_true", help="print only, do not write docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [64, 128] if args.quick else [64, 128, 256]
    rows, notes = run(sizes, [1, 8], min_time=0.1 if args.quick else 0.3)
    header = ["operator", "size", "batch", "torch ms", "reference", "reference ms", "speed-up",
              "network ms", "% of network"]
    md = "\n".join([
        "## Forward operators (`scripts/benchmark_operators.py" + (" --quick" if args.quick else "") + "`)",
        "",
        f"CPU, torch {torch.__version__}, {args.threads} torch thread(s), {platform.machine()}; best wall time "
        "per call over repeated runs. Reference work: skimage looped over the batch, NumPy FFT on the same "
        "inputs. Network: MONAI DiffusionModelUNet(channels=(32, 64, 64), attention at the lowest level), one evaluation at "
        "the same size, batch and channels (3 for Inpainting/Grayscale, 1 otherwise).",
        "",
        markdown_table(header, rows),
        "",
        *summary(rows),
        *[f"- {note}" for note in notes],
    ])
    print(md)
    if not args.no_report:
        print("wrote", write_report_section("operators", md))


if __name__ == "__main__":
    main()

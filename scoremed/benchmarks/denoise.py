"""The denoising benchmark (``scoremed benchmark denoise``): each prior's Tweedie denoiser against BM3D and TV.

Every reconstruction method in scoremed is as good as the prior's denoiser D(y, sigma) = y + sigma^2 s
(one score call, :func:`scoremed.denoising.prior_denoiser`), so this is the fast inner-loop measure of a
prior: seconds per run instead of minutes per reconstruction. For each prior and each noise level
sigma (data units, images in [0, 1]) the same noisy image y = x + sigma n goes to

- ``noisy``: y itself;
- ``tv``: total-variation denoising (``skimage.restoration.denoise_tv_chambolle``) with the weight
  tuned *on the image itself against its truth* (an oracle: an upper bound for TV);
- ``bm3d``: BM3D (the ``bm3d`` package, ``scoremed[bm3d]``) given the true sigma;
- ``prior``: the prior's Tweedie denoiser (``prior xK``: averaged over K random tilings of a patch prior).

Images: held-out images of each prior's own data (``test`` split, or ``val`` for choosing recipes) at
native resolution and, for ``test``, the real MR / CT scans of :mod:`scoremed.benchmarks.real_images`
(never trained or tuned on); with ``--data NAME`` another built-in data set's held-out images instead (how a
prior denoises images unlike its training data). Every estimate is clipped to [0, 1] before PSNR / SSIM.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from scoremed.apps.metrics import image_metrics
from scoremed.benchmarks.report import markdown_table
from scoremed.denoising import bm3d_denoiser, prior_denoiser
from scoremed.errors import InputError

SIGMAS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
METHODS = ("noisy", "tv", "bm3d", "prior")
#: golden-section iterations of the oracle TV weight search over log10(weight) in [-3, 0.5]
TV_SEARCH_ITERATIONS = 14


@dataclass
class Result:
    """One (image, sigma, method) measurement."""
    prior: str
    image: str
    sigma: float
    method: str
    psnr: float
    ssim: float
    seconds: float


def noisy_copy(image: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """image (C, H, W) + sigma n with n ~ N(0, I) drawn from ``seed`` on the CPU (same for every method)."""
    g = torch.Generator().manual_seed(seed)
    return image + sigma * torch.randn(image.shape, generator=g, dtype=image.dtype)


def tv_oracle(noisy: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """TV denoising (C, H, W) with the weight that maximises PSNR against ``truth`` (golden section)."""
    from skimage.restoration import denoise_tv_chambolle

    def run(log_w: float) -> tuple[float, np.ndarray]:
        out = np.clip(denoise_tv_chambolle(noisy, weight=10 ** log_w, channel_axis=0), 0, 1)
        return -float(np.mean((out - truth) ** 2)), out

    ratio = (math.sqrt(5) - 1) / 2
    a, b = -3.0, 0.5
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = run(c), run(d)
    for _ in range(TV_SEARCH_ITERATIONS):
        if fc[0] > fd[0]:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = run(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = run(d)
    return max(fc, fd, key=lambda r: r[0])[1]


def benchmark_images(prior: str, split: str, n_images: int, data: str | None = None) -> dict[str, torch.Tensor]:
    """Images (C, H, W) by label: ``n_images`` held-out items of ``prior``'s data (spread over the split,
    so over its contrasts), then for the test split the real scans of its modality (its ``real_images``).

    ``data``: another built-in data set's held-out items instead (labelled ``"<data> <split> <i>"``, no real
    scans), in the prior's channel count (the channel mean for RGB into one channel): how the prior
    denoises images unlike its training data."""
    from scoremed.benchmarks.real_images import real_images
    from scoremed.data import channels_of, get_dataset
    from scoremed.data.files import match_channels
    from scoremed.priors import shipped_prior

    if split not in ("val", "test"):
        raise InputError(f"split: expected 'val' or 'test', got {split!r}")
    other = data is not None and data != prior
    dataset = get_dataset(data if other else prior, split, image_size=None)
    channels = channels_of(prior)
    items = np.unique(np.linspace(0, len(dataset) - 1, n_images).round().astype(int)) if n_images else []
    prefix = f"{data} " if other else ""
    images = {f"{prefix}{split} {int(i)}": match_channels(dataset[int(i)][None], channels, f"data: {data}")[0]
              for i in items}
    modality = shipped_prior(prior).real_images
    if split == "test" and modality is not None and not other:
        images.update(real_images(modality))
    return images


def image_group(label: str) -> str:
    """'held-out' for the prior's own split items, '<data> <split>' for another data set's, else the real
    image's name."""
    words = label.split()
    if words[0] in ("val", "test"):
        return "held-out"
    return " ".join(words[:2]) if len(words) == 3 and words[1] in ("val", "test") else label


def denoise_image(prior_name: str, label: str, truth: torch.Tensor, sigmas, methods: dict[str, Callable],
                  seed: int) -> list[Result]:
    """Results of every method at every sigma on one image (C, H, W)."""
    out = []
    truth_np = truth.double().numpy()
    for k, sigma in enumerate(sigmas):
        y = noisy_copy(truth, sigma, seed + 1000 * k)
        for method, run in methods.items():
            start = time.perf_counter()
            estimate = run(y, sigma, truth_np)
            seconds = time.perf_counter() - start
            m = image_metrics(truth, torch.as_tensor(np.asarray(estimate, dtype=np.float32)))
            out.append(Result(prior_name, label, sigma, method, m["psnr"], m["ssim"], seconds))
    return out


def method_functions(methods, prior=None, offsets: int = 1) -> dict[str, Callable]:
    """``label -> run(y (C, H, W) tensor, sigma, truth ndarray) -> estimate`` for the chosen methods
    (``prior`` needs the loaded prior; it is labelled ``prior xK`` when averaged over K tilings)."""
    table: dict[str, Callable] = {
        "noisy": lambda y, s, truth: y.numpy(),
        "tv": lambda y, s, truth: tv_oracle(y.double().numpy(), truth),
        "bm3d": lambda y, s, truth: bm3d_denoiser(y[None].double(), s)[0].numpy(),
    }
    chosen = {}
    for name in methods:
        if name not in METHODS:
            raise InputError(f"methods: unknown {name!r}; expected a subset of {list(METHODS)}")
        if name != "prior":
            chosen[name] = table[name]
            continue
        denoise = prior_denoiser(prior)

        def tweedie(y, sigma, truth):
            y = y[None].to(prior.device)   # one call per tiling: a patch prior draws one offset per call
            return (sum(denoise(y, sigma) for _ in range(offsets)) / offsets)[0].cpu().numpy()

        chosen["prior" if offsets == 1 else f"prior x{offsets}"] = tweedie
    return chosen


def run_prior(prior_name: str, split: str, n_images: int, sigmas, methods, device=None, seed: int = 0,
              offsets: int = 1, weights: str | None = None, data: str | None = None) -> list[Result]:
    """Every result of one prior (``weights``: a run folder or .safetensors to load instead of the shipped one;
    ``data``: another data set's held-out images, see :func:`benchmark_images`)."""
    from scoremed.priors import load_prior

    prior = load_prior(weights or prior_name, device=device) if "prior" in methods else None
    functions = method_functions(methods, prior, offsets)
    results = []
    for i, (label, image) in enumerate(benchmark_images(prior_name, split, n_images, data).items()):
        if prior is not None and prior.channels != image.shape[0]:
            raise InputError(f"prior: {weights or prior_name} has {prior.channels} channel(s), the {prior_name} "
                             f"images have {image.shape[0]}")
        results += denoise_image(prior_name, label, image, sigmas, functions, seed + 7919 * i)
    return results


# -- tables and figure ------------------------------------------------------------------------
def label_is_scan(group: str) -> bool:
    """True for a real scan's group (one image), False for held-out items (several)."""
    return group != "held-out" and group.split()[-1] not in ("val", "test")


def summary_rows(results: list[Result], sigmas) -> list[list[object]]:
    """One row per (prior, image group, method): mean PSNR / SSIM at each sigma, mean seconds per image."""
    keys = list(dict.fromkeys((r.prior, image_group(r.image), r.method) for r in results))
    rows = []
    for prior, group, method in keys:
        chosen = [r for r in results if (r.prior, image_group(r.image), r.method) == (prior, group, method)]
        n = len({r.image for r in chosen})
        cells = []
        for sigma in sigmas:
            at = [r for r in chosen if r.sigma == sigma]
            cells.append(f"{np.mean([r.psnr for r in at]):.2f} / {np.mean([r.ssim for r in at]):.3f}" if at else "")
        rows.append([prior, group if label_is_scan(group) else f"{group} ({n})", method, *cells,
                     f"{np.mean([r.seconds for r in chosen]):.2f}"])
    return rows


def gap_rows(results: list[Result], sigmas, against: str = "bm3d") -> list[list[object]]:
    """prior - ``against`` PSNR (dB) per (prior, image group, prior variant) and sigma."""
    def mean_psnr(prior, group, method, sigma):
        at = [r.psnr for r in results if (r.prior, image_group(r.image), r.method, r.sigma) ==
              (prior, group, method, sigma)]
        return float(np.mean(at)) if at else None

    keys = list(dict.fromkeys((r.prior, image_group(r.image), r.method) for r in results
                              if r.method.startswith("prior")))
    rows = []
    for prior, group, method in keys:
        cells = []
        for sigma in sigmas:
            ours, theirs = mean_psnr(prior, group, method, sigma), mean_psnr(prior, group, against, sigma)
            cells.append("" if ours is None or theirs is None else f"{ours - theirs:+.2f}")
        rows.append([prior, group, method, *cells])
    return rows


def denoise_markdown(results: list[Result], sigmas, split: str, note: str = "", figure: str | None = None) -> str:
    header = ["prior", "images", "method", *[f"σ {s:g}" for s in sigmas], "s / image"]
    text = (f"## Denoising (`scoremed benchmark denoise`, {split} split)\n\n{note}\n\n"
            "PSNR (dB) / SSIM of y = x + σ n denoised, images in [0, 1] at native resolution; `held-out (N)` is "
            "the mean over N images of the prior's own held-out split, named rows are real scans no one trained "
            "or tuned on. `tv` is oracle-tuned on each image (an upper bound for TV), `bm3d` gets the true σ, "
            "`prior` is the Tweedie estimate x + σ² s(x, σ) (one score call). Seconds are per image and σ.\n\n"
            + markdown_table(header, summary_rows(results, sigmas)))
    gaps = gap_rows(results, sigmas)
    if gaps and any(r.method == "bm3d" for r in results):
        text += "\n\nprior − BM3D (dB):\n\n" + markdown_table(["prior", "images", "method",
                                                                *[f"σ {s:g}" for s in sigmas]], gaps)
    if figure:
        text += f"\n\n![PSNR against σ]({figure})"
    return text


def plot(results: list[Result], sigmas, path: str | Path) -> Path:
    """PSNR against sigma, one panel per (prior, image group), one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((r.prior, image_group(r.image)) for r in results))
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    for ax, (prior, group) in zip(axes.flat, panels):
        chosen = [r for r in results if (r.prior, image_group(r.image)) == (prior, group)]
        for method in dict.fromkeys(r.method for r in chosen if r.method != "noisy"):
            xs = [s for s in sigmas if any(r.sigma == s and r.method == method for r in chosen)]
            noisy = [np.mean([r.psnr for r in chosen if r.sigma == s and r.method == "noisy"] or [0]) for s in xs]
            ys = [np.mean([r.psnr for r in chosen if r.sigma == s and r.method == method]) for s in xs]
            # gain over the noisy input keeps the lines of every sigma on one readable scale
            ax.plot(xs, np.subtract(ys, noisy), marker="o", label=method)
        ax.set_xscale("log")
        ax.set_title(f"{prior}: {group}", fontsize=9)
        ax.set_xlabel("σ")
        ax.set_ylabel("PSNR gain over noisy (dB)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- raw results --------------------------------------------------------------------------------
def load_results(path: str | Path) -> list[Result]:
    """Results saved by :func:`save_results` (none if the file does not exist)."""
    import json

    path = Path(path)
    if not path.is_file():
        return []
    try:
        return [Result(**row) for row in json.loads(path.read_text())]
    except (ValueError, TypeError) as exc:
        raise InputError(f"--json: {path} is not a denoising results file: {exc}") from None


def save_results(results: list[Result], path: str | Path) -> Path:
    import dataclasses
    import json

    from scoremed.io.atomic import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps([dataclasses.asdict(r) for r in results], indent=0))
    return path


def merge_results(previous: list[Result], new: list[Result]) -> list[Result]:
    """``previous`` with each (prior, image, sigma, method) that ``new`` has replaced in place, then the
    rest of ``new`` (so a re-run prior keeps its place in the tables)."""
    def key(r: Result) -> tuple:
        return r.prior, r.image, r.sigma, r.method

    merged = {key(r): r for r in previous}
    merged.update((key(r), r) for r in new)
    return list(merged.values())

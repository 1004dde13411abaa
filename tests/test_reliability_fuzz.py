"""Property-based fuzzing (hypothesis) of operators, solve and every file loader.

The property everywhere: only the documented exceptions (InputError; SamplingDiverged for
sampling), no hang (each call runs under an alarm), and no partial output (a call that
returns gives a complete, finite result of the right shape; a truncated file either fails
or gives exactly what the whole file gives).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import scoremed
from scoremed.io.checkpoint import read_training_state
from scoremed.priors import save_prior
from scoremed.training.config import Config, config_from_dict, load_config
from scoremed.errors import InputError, SamplingDiverged
from scoremed.io.images import load_image, save_png
from scoremed.io.nifti import save_nifti_slice
from scoremed.networks import build_score_network
from scoremed.operators import CT, MRI, Grayscale, Inpainting, cartesian_mask, random_pixel_mask, sparse_view_angles
from scoremed.operators.multicoil import MultiCoilMRI
from scoremed.networks.published import read_reference_checkpoint
from scoremed.sde import VESDE
from conftest import smooth_gaussian

H = 8
#: examples per property; SCOREMED_FUZZ_EXAMPLES=2000 for a deeper campaign than the CI default
EXAMPLES = int(os.environ.get("SCOREMED_FUZZ_EXAMPLES", "60"))
FUZZ = settings(deadline=None, max_examples=EXAMPLES, suppress_health_check=list(HealthCheck), derandomize=False)
SEEDS = st.integers(0, 2 ** 32 - 1)


@contextlib.contextmanager
def no_hang(seconds: int = 20):
    """Fail (instead of hanging the suite) if the block runs longer than ``seconds``."""
    def alarm(signum, frame):
        raise AssertionError(f"no result within {seconds} s: hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- tensors ----------------------------------------------------------------------------
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.complex64, torch.complex128,
          torch.int64, torch.uint8, torch.bool]


@st.composite
def tensors(draw, like: tuple[int, ...]):
    """Mostly near-valid tensors: the expected shape or a perturbed one, any dtype, sometimes
    NaN / Inf / huge entries."""
    shape = list(like)
    kind = draw(st.sampled_from(["ok", "ok", "ok", "dim", "drop", "add", "empty"]))
    if kind == "dim":
        i = draw(st.integers(0, len(shape) - 1))
        shape[i] = draw(st.integers(0, 12))
    elif kind == "drop":
        shape.pop(draw(st.integers(0, len(shape) - 1)))
    elif kind == "add":
        shape.insert(draw(st.integers(0, len(shape))), draw(st.integers(1, 3)))
    elif kind == "empty":
        shape[0] = 0
    dtype = draw(st.sampled_from(DTYPES[:2] * 3 + DTYPES))
    g = torch.Generator().manual_seed(draw(SEEDS))
    t = torch.rand(shape, generator=g, dtype=torch.float64) * draw(st.sampled_from([1.0, 1.0, 1e-30, 1e4, 1e38]))
    special = draw(st.sampled_from([None, None, None, float("nan"), float("inf"), -float("inf")]))
    if special is not None and t.numel():
        t.view(-1)[draw(st.integers(0, t.numel() - 1))] = special
    if dtype.is_complex:
        return torch.complex(t, t.flip(-1) if t.ndim else t).to(dtype)
    return t.to(dtype)


def make_operators():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(3, H, H, dtype=torch.complex64, generator=g)
    return {"inpainting": Inpainting(random_pixel_mask((H, H), 0.5, seed=0)),
            "mri": MRI(cartesian_mask((H, H), accel=2, seed=0)),
            "mri-complex": MRI(cartesian_mask((H, H), accel=2, seed=0), complex_images=True),
            "multicoil": MultiCoilMRI(cartesian_mask((H, H), accel=2, seed=0), maps),
            "grayscale": Grayscale(),
            "ct": CT(H, sparse_view_angles(4, n_full=12))}


OPS = make_operators()
IMAGE_SHAPES = {"grayscale": (2, 3, H, H)}
METHODS = ["forward", "adjoint", "pseudo_inverse", "transform", "inverse_transform", "embed"]


def expected_input_shape(name: str, op, method: str) -> tuple[int, ...]:
    image = IMAGE_SHAPES.get(name, (2, 1, H, H))
    if method in ("forward", "transform"):
        return image
    if method == "inverse_transform":
        return tuple(op.transform(torch.zeros(image)).shape)
    return tuple(op(torch.zeros(image)).shape)


@FUZZ
@given(name=st.sampled_from(sorted(OPS)), method=st.sampled_from(METHODS), data=st.data())
def test_operators_accept_valid_input_and_refuse_the_rest_with_input_error(name, method, data):
    op = OPS[name]
    assume(hasattr(op, method))
    t = data.draw(tensors(expected_input_shape(name, op, method)))
    try:
        with no_hang():
            out = getattr(op, method)(t)
    except InputError:
        event("InputError")
        return
    event("returned a tensor")
    assert isinstance(out, torch.Tensor) and out.shape[0] == t.shape[0]
    assert method not in ("pseudo_inverse",) or bool(torch.isfinite(t).all())   # it refuses NaN/Inf
    if bool(torch.isfinite(t).all()) and float(t.abs().max()) < 1e30:
        # finite input gives finite output (values near the float maximum may overflow: documented)
        assert bool(torch.isfinite(out).all()), (name, method, t.dtype)


# --- solve ------------------------------------------------------------------------------
mean, cov = smooth_gaussian(H)
GAUSS = scoremed.gaussian_prior(VESDE(sigma_max=5.0), mean, cov, (1, H, H))
SOLVE_OPS = {k: OPS[k] for k in ("inpainting", "mri", "ct")}
maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731
SETTINGS = st.fixed_dictionaries({
    "method": st.sampled_from(["consistency", "projection", "dps", "DPS", ""]),
    "steps": maybe(st.one_of(st.integers(-1, 4), st.floats(0, 4), st.just("3"))),
    "snr": maybe(st.one_of(st.floats(-1, 1), st.sampled_from([float("nan"), float("inf")]))),
    "lam": maybe(st.one_of(st.floats(-1, 2), st.sampled_from([float("nan"), -float("inf")]))),
    "seed": maybe(st.one_of(st.integers(-2, 2 ** 64), st.just("x"))),
    "n_samples": st.one_of(st.integers(-1, 2), st.just(1.5)),
})


@FUZZ
@given(name=st.sampled_from(sorted(SOLVE_OPS)), kwargs=SETTINGS, data=st.data())
def test_solve_returns_a_finite_image_or_raises_a_documented_error(name, kwargs, data):
    op = SOLVE_OPS[name]
    y = data.draw(tensors(tuple(op(torch.zeros(1, 1, H, H)).shape)))
    try:
        with no_hang():
            x = scoremed.solve(y, op, prior=GAUSS, progress=False, **kwargs)
    except (InputError, SamplingDiverged) as exc:
        event(type(exc).__name__)
        return
    event("returned an image")
    assert x.shape == (y.shape[0], 1, H, H) and bool(torch.isfinite(x).all())


VALID_SETTINGS = st.fixed_dictionaries({
    "method": st.sampled_from(["consistency", "projection", "dps"]), "steps": st.integers(1, 4),
    "snr": st.floats(0, 0.5), "lam": st.floats(0, 1), "seed": SEEDS, "n_samples": st.integers(1, 2)})


@FUZZ
@given(name=st.sampled_from(sorted(SOLVE_OPS)), kwargs=VALID_SETTINGS, data=st.data())
def test_solve_with_valid_settings_on_arbitrary_measurements(name, kwargs, data):
    """Valid settings, so the sampler runs whenever y is valid (any float dtype, tiny or huge values)."""
    op = SOLVE_OPS[name]
    if data.draw(st.booleans()):   # half the time a clean measurement of a random image, at any scale
        g = torch.Generator().manual_seed(data.draw(SEEDS))
        x = torch.rand(data.draw(st.integers(1, 3)), 1, H, H, generator=g, dtype=torch.float64)
        y = op(x * data.draw(st.sampled_from([1.0, 1e-6, 1e3, 1e12]))).to(
            data.draw(st.sampled_from([torch.float32, torch.float64])) if name != "mri" else torch.complex64)
    else:
        y = data.draw(tensors(tuple(op(torch.zeros(1, 1, H, H)).shape)))
    try:
        with no_hang():
            x = scoremed.solve(y, op, prior=GAUSS, progress=False, **kwargs)
    except (InputError, SamplingDiverged) as exc:
        event(type(exc).__name__)
        return
    event("returned an image")
    assert x.shape == (y.shape[0], 1, H, H) and bool(torch.isfinite(x).all())


# --- file loaders -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files():
    """Valid small files of every format the loaders read, as {name: bytes}."""
    folder = Path(tempfile.mkdtemp(prefix="fuzz_files_"))
    image = torch.rand(1, 16, 16)
    save_png(folder / "a.png", image)
    save_nifti_slice(folder / "a.nii.gz", image)
    np.save(folder / "a.npy", image[0].numpy())
    import nibabel as nib
    nib.save(nib.Nifti1Image(image[0].numpy(), np.eye(4)), str(folder / "a.nii"))
    from skimage.io import imsave
    imsave(folder / "a.jpg", (image[0].numpy() * 255).astype(np.uint8))
    imsave(folder / "a.tif", (image[0].numpy() * 255).astype(np.uint8))
    (folder / "a.dcm").write_bytes(dicom_bytes(image[0].numpy()))

    config = load_config(Path(scoremed.__file__).parent.parent / "configs" / "smoke.yaml")
    sde = VESDE(sigma_max=10.0, N=100)
    prior = scoremed.ScorePrior(sde, build_score_network(config.architecture(), sde).eval(), (1, 16, 16))
    save_prior(folder / "tiny", prior, config.architecture())
    buffer = io.BytesIO()
    torch.save({"model": {"module.w": torch.zeros(3)}, "ema": {"shadow_params": [torch.ones(3)]}, "step": 5}, buffer)
    return Files({"folder": folder, "prior_weights": (folder / "tiny.safetensors").read_bytes(),
            "prior_meta": json.loads((folder / "tiny.json").read_text()), "reference": buffer.getvalue(),
            "images": {p.name: p.read_bytes() for p in folder.glob("a.*")},
            "expected": {p.name: load_image(p, 1, (16, 16)) for p in folder.glob("a.*")}})


class Files(dict):
    def __repr__(self):   # keep hypothesis' falsifying-example reports short
        return f"<valid sample files in {self['folder']}>"


def dicom_bytes(array: np.ndarray) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.Rows, ds.Columns = array.shape
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 15, 0, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = (array * 1000).astype(np.uint16).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def mutate(data: bytes, how: str, draw) -> bytes:
    """Truncate, flip bytes in, or append to ``data``."""
    if how == "truncate":
        return data[:draw(st.integers(0, max(0, len(data) - 1)))]
    if how == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            pos = draw(st.integers(0, len(out) - 1))
            out[pos] ^= draw(st.integers(1, 255))
        return bytes(out)
    if how == "append":
        return data + draw(st.binary(min_size=1, max_size=64))
    return draw(st.binary(max_size=2048))


def assert_prior_equals_original(prior, files) -> None:
    from safetensors.torch import load
    original = load(files["prior_weights"])
    state = prior.network.state_dict()
    assert all(torch.equal(state[k], v) for k, v in original.items())


@FUZZ
@given(how=st.sampled_from(["truncate", "flip", "append", "random"]), checksum=st.booleans(), data=st.data())
def test_load_prior_on_corrupt_weights_fails_or_loads_exactly_the_original(files, how, checksum, data):
    folder = Path(tempfile.mkdtemp(dir=files["folder"]))
    raw = files["prior_weights"]
    if how == "flip" and not checksum:
        # without the recorded checksum only the header (tensor table) can be checked; a flip in the
        # tensor data is then undetectable by design (which is why every writer records weights_sha256)
        header = 8 + struct.unpack("<Q", raw[:8])[0]
        mutated = bytearray(raw)
        mutated[data.draw(st.integers(0, header - 1))] ^= data.draw(st.integers(1, 255))
        mutated = bytes(mutated)
    else:
        mutated = mutate(raw, how, data.draw)
    meta = dict(files["prior_meta"])
    if not checksum:
        meta.pop("weights_sha256")
    write(folder, "p.json", json.dumps(meta).encode())
    path = write(folder, "p.safetensors", mutated)
    try:
        with no_hang():
            prior = scoremed.load_prior(path)
    except InputError:
        event("InputError")
        return
    event("loaded (identical weights)")
    assert not checksum or mutated == raw
    assert_prior_equals_original(prior, files)   # a flip the loader accepts must not change any weight


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 2 ** 70) | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                      max_size=4), max_leaves=12)


@FUZZ
@given(field=st.sampled_from(["format_version", "sde", "architecture", "image_shape", "centered", "solve_defaults",
                              "name", "weights_sha256", "kind", "<whole file>", "<bytes>"]),
       value=JSON_VALUES, raw=st.binary(max_size=512), data=st.data())
def test_load_prior_on_random_metadata_raises_input_error_only(files, field, value, raw, data):
    folder = Path(tempfile.mkdtemp(dir=files["folder"]))
    meta = json.loads(json.dumps(files["prior_meta"]))
    if field in ("sde", "architecture") and data.draw(st.booleans()):   # one key inside the mapping
        meta[field][data.draw(st.sampled_from(sorted(meta[field]) + ["extra"]))] = value
    else:
        meta[field] = value
    text = {"<whole file>": json.dumps(value).encode(), "<bytes>": raw}.get(field, json.dumps(meta).encode())
    write(folder, "p.json", text)
    path = write(folder, "p.safetensors", files["prior_weights"])
    try:
        with no_hang():
            prior = scoremed.load_prior(path)
    except InputError:
        event("InputError")
        return
    event("loaded")
    assert_prior_equals_original(prior, files)


IMAGE_NAMES = ["a.png", "a.jpg", "a.tif", "a.npy", "a.nii", "a.nii.gz", "a.dcm"]


@FUZZ
@given(name=st.sampled_from(IMAGE_NAMES), how=st.sampled_from(["truncate", "flip", "append", "random"]),
       data=st.data())
def test_load_image_on_corrupt_files_raises_input_error_or_returns_a_valid_image(files, name, how, data):
    folder = Path(tempfile.mkdtemp(dir=files["folder"]))
    raw = files["images"][name]
    mutated = mutate(raw, how, data.draw)
    path = write(folder, "x" + name[1:], mutated)
    try:
        with no_hang():
            image = load_image(path, 1, (16, 16))
    except InputError:
        event("InputError")
        return
    event(f"returned an image ({how})")
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32
    assert bool(torch.isfinite(image).all()) and 0 <= float(image.min()) and float(image.max()) <= 1
    if how == "truncate":   # a truncated file must not give a partial image
        assert torch.equal(image, files["expected"][name]), f"{name} truncated to {len(mutated)} of {len(raw)} bytes"


def make_array(shape, dtype, fill, seed) -> np.ndarray:
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fill is None:
            return (np.random.default_rng(seed).random(shape) * 100).astype(dtype)
        return np.full(shape, fill, dtype=dtype)


ARRAYS = st.builds(
    make_array,
    shape=st.lists(st.integers(1, 6), min_size=0, max_size=5).map(tuple),   # empty arrays: see below
    dtype=st.sampled_from(["float32", "float64", "float16", "int16", "uint8", "bool", "complex64", "U3"]),
    fill=st.sampled_from([None, None, 0, np.nan, np.inf]), seed=SEEDS)


@FUZZ
@given(array=ARRAYS)
def test_load_image_on_arbitrary_npy_arrays(files, array):
    folder = Path(tempfile.mkdtemp(dir=files["folder"]))
    path = folder / "a.npy"
    try:
        np.save(path, array)
    except (ValueError, TypeError):
        return
    try:
        with no_hang():
            image = load_image(path, 1, (16, 16))
    except InputError:
        event("InputError")
        return
    event("returned an image")
    assert image.shape == (1, 16, 16) and bool(torch.isfinite(image).all())


@pytest.mark.parametrize("shape", [(0,), (0, 0), (0, 0, 0), (4, 0)])
def test_load_image_on_empty_arrays(files, shape):
    path = Path(tempfile.mkdtemp(dir=files["folder"])) / "empty.npy"
    np.save(path, np.zeros(shape, dtype=np.float32))
    with pytest.raises(InputError):
        load_image(path, 1, (16, 16))


@FUZZ
@given(how=st.sampled_from(["truncate", "flip", "append", "random"]), data=st.data())
def test_pickle_based_readers_on_corrupt_files_raise_input_error_only(files, how, data):
    folder = Path(tempfile.mkdtemp(dir=files["folder"]))
    path = write(folder, "c.pth", mutate(files["reference"], how, data.draw))
    for reader in (read_reference_checkpoint, read_training_state):
        try:
            with no_hang():
                out = reader(path)
        except InputError:
            event(f"{reader.__name__}: InputError")
            continue
        event(f"{reader.__name__}: returned a dict")
        assert isinstance(out, dict)


@FUZZ
@given(text=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                      JSON_VALUES.map(lambda v: json.dumps({"training": v}).encode()),
                      st.dictionaries(st.sampled_from(["name", "data", "sde", "model", "training", "solve"]),
                                      JSON_VALUES, max_size=3).map(lambda v: json.dumps(v).encode())))
def test_load_config_on_random_files_raises_input_error_only(files, text):
    folder = Path(tempfile.mkdtemp(dir=files["folder"]))
    path = write(folder, "c.yaml", text)
    try:
        with no_hang():
            config = load_config(path)
    except InputError:
        event("InputError")
        return
    event("returned a Config")
    assert isinstance(config, Config)


def test_config_from_dict_checks_nested_types():
    with pytest.raises(InputError, match=r"training.steps expected an integer, got '10'"):
        config_from_dict({"training": {"steps": "10"}})
    with pytest.raises(InputError, match=r"model.channels\[1\] expected a value > 0"):
        config_from_dict({"model": {"channels": [8, 0]}})

"""torchrun / DDP (CPU, gloo, 2 processes): same loss trajectory and weights as one process with the
same global batch, one consistent checkpoint, resume with another process count, and sharded
reconstruction equal to the single-process one."""
import os
import shutil
import subprocess
import sys
from pathlib import Path
import textwrap

import numpy as np
import pytest
import torch
import yaml

import scoremed
from scoremed.apps.stack import solve_sharded
from scoremed.distributed import DistContext, init_distributed, map_sharded, shard_range
from scoremed.errors import InputError
from scoremed.io.checkpoint import latest_checkpoint, read_json, read_safetensors
from scoremed.training.config import load_config
from scoremed.operators import MRI, cartesian_mask
from scoremed.training import StepBatchSampler, Trainer, shard_noise
from scoremed.data import training_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]   # the checkout (scripts/, configs/)

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")


def torchrun(args, nproc=2, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT / "tests")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def losses(run_dir):
    rows = (run_dir / "log.csv").read_text().splitlines()
    assert rows[0] == "step,loss,lr,images_per_s"
    return {int(r.split(",")[0]): float(r.split(",")[1]) for r in rows[1:]}


def weights(checkpoint):
    return read_safetensors(checkpoint / "weights.safetensors")


def assert_same_weights(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < atol, worst


@pytest.fixture(scope="module")
def tiny_config_file(tmp_path_factory):
    """The smoke config logging every step and checkpointing every 5 steps."""
    values = yaml.safe_load((REPO_ROOT / "configs" / "smoke.yaml").read_text())
    values["training"].update(log_every=1, checkpoint_every=5, keep_checkpoints=2, steps=20)
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.mark.slow
def test_two_processes_match_one_and_resume_with_another_count(tmp_path, tiny_config_file):
    config = load_config(tiny_config_file)
    two = tmp_path / "two"
    done = torchrun([str(REPO_ROOT / "scripts" / "train_prior.py"), "--config", str(tiny_config_file),
                     "--out", str(two), "--steps", "10", "--no-progress", "--device", "cpu"])
    assert "with 2 processes (gloo)" in done.stderr

    # one process, same global batch, straight to 20 steps (checkpoints 15 and 20 kept)
    one = tmp_path / "one"
    Trainer(config, training_dataset(config), one, device="cpu", progress=False).train(10)
    ten = one / "checkpoints" / "step_00000010"
    shutil.copytree(ten, tmp_path / "one_step10")
    Trainer(config, training_dataset(config), one, device="cpu", resume=True, progress=False).train(20)

    # the same loss trajectory: one row per step, written once (rank 0 only)
    l2, l1 = losses(two), losses(one)
    assert sorted(l2) == list(range(1, 11))
    for step in range(1, 11):
        assert l2[step] == pytest.approx(l1[step], rel=1e-4, abs=1e-6), step

    # one consistent checkpoint set: steps 5 and 10, `latest` -> 10, no temporary folders
    names = sorted(p.name for p in (two / "checkpoints").iterdir())
    assert names == ["step_00000005", "step_00000010"]
    assert latest_checkpoint(two).name == "step_00000010"
    assert read_json(two / "checkpoints" / "step_00000010" / "metadata.json")["step"] == 10
    assert_same_weights(weights(two / "checkpoints" / "step_00000010"), weights(tmp_path / "one_step10"))
    assert scoremed.load_prior(two).image_shape == (1, 16, 16)

    # resume the 2-process checkpoint in 1 process: continues exactly like the straight run
    resumed = Trainer(config, training_dataset(config), two, device="cpu", resume=True, progress=False)
    assert resumed.step == 10
    resumed.train(15)
    assert_same_weights(weights(two / "checkpoints" / "step_00000015"), weights(one / "checkpoints" / "step_00000015"))


@pytest.mark.slow
def test_resume_a_single_process_checkpoint_with_two_processes(tmp_path, tiny_config_file):
    config = load_config(tiny_config_file)
    one = tmp_path / "one"
    Trainer(config, training_dataset(config), one, device="cpu", progress=False).train(5)
    two = tmp_path / "two"
    shutil.copytree(one, two)
    Trainer(config, training_dataset(config), one, device="cpu", resume=True, progress=False).train(10)
    done = torchrun([str(REPO_ROOT / "scripts" / "train_prior.py"), "--config", str(tiny_config_file),
                     "--out", str(two), "--steps", "10", "--resume", "--no-progress", "--device", "cpu"])
    assert "checkpoint of a 1-process run, now 2 processes" in done.stderr
    assert_same_weights(weights(two / "checkpoints" / "step_00000010"), weights(one / "checkpoints" / "step_00000010"))
    l2, l1 = losses(two), losses(one)
    assert all(l2[s] == pytest.approx(l1[s], rel=1e-4) for s in range(6, 11))


RECONSTRUCT = textwrap.dedent("""
    import sys
    import numpy as np
    import torch
    import scoremed
    from scoremed.apps.stack import solve_sharded
    from scoremed.distributed import init_distributed, shutdown
    from test_distributed import study

    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    y, operator = study()
    prior = scoremed.load_prior(sys.argv[1])
    x = solve_sharded(y, operator, prior=prior, chunk_size=2, seed=3, steps=12, progress=False, ctx=ctx)
    if ctx.is_main:
        np.save(sys.argv[2], x.numpy())
    shutdown(ctx)
""")


def study():
    """Five 16 x 16 'slices' and a 2x Cartesian MRI operator (deterministic)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 1, 16, 16, generator=g) * 0.5 + 0.25
    operator = MRI(cartesian_mask((16, 16), accel=2, center_fraction=0.25, seed=1))
    return operator(x), operator


@pytest.mark.slow
def test_sharded_reconstruction_equals_the_single_process_one(tmp_path, smoke_run):
    script = tmp_path / "reconstruct_sharded.py"
    script.write_text(RECONSTRUCT)
    torchrun([str(script), str(smoke_run), str(tmp_path / "x.npy")])
    y, operator = study()
    single = solve_sharded(y, operator, prior=scoremed.load_prior(smoke_run), chunk_size=2, seed=3, steps=12,
                           progress=False)
    assert single.shape == (5, 1, 16, 16)
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"), single.numpy(), rtol=0, atol=1e-6)


# --- in-process pieces ------------------------------------------------------------------------
@pytest.mark.parametrize("n, world", [(10, 2), (5, 2), (7, 3), (2, 4)])
def test_shards_cover_every_item_once_in_order(n, world):
    ranges = [shard_range(n, r, world) for r in range(world)]
    assert [i for r in ranges for i in r] == list(range(n))
    assert max(map(len, ranges)) - min(map(len, ranges)) <= 1
    assert map_sharded(lambda i, item: item * 10, list(range(n)), DistContext()) == [i * 10 for i in range(n)]


def test_rank_shares_of_batches_and_noise_make_up_the_global_ones():
    full = next(iter(StepBatchSampler(100, 8, seed=1, start_step=3)))
    shares = [next(iter(StepBatchSampler(100, 8, seed=1, start_step=3, rank=r, world_size=2))) for r in range(2)]
    assert shares[0] + shares[1] == full
    sde = scoremed.VESDE()
    t1, z1 = shard_noise(sde, (8, 1, 4, 4), 1e-5, torch.Generator().manual_seed(7), 0, 1, "cpu")
    parts = [shard_noise(sde, (4, 1, 4, 4), 1e-5, torch.Generator().manual_seed(7), r, 2, "cpu") for r in range(2)]
    torch.testing.assert_close(torch.cat([p[0] for p in parts]), t1, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([p[1] for p in parts]), z1, rtol=0, atol=0)


def test_single_process_context_and_clear_errors(monkeypatch, tiny_config_file, tmp_path):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.is_distributed) == (0, 1, True, False)
    with pytest.raises(InputError, match="backend"):
        init_distributed("cpu", backend="mpi")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(InputError, match="nccl needs CUDA"):
        init_distributed("cpu", backend="nccl")
    config = load_config(tiny_config_file)
    config.training.batch_size = 3
    with pytest.raises(InputError, match="batch_size.*multiple of the 2 processes"):
        Trainer(config, training_dataset(config), tmp_path, device="cpu", progress=False,
                dist=DistContext(rank=0, world_size=2))

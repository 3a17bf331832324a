"""Data-parallel training on MPI (layerwise.distributed), run for real under MPICH's mpiexec.

Each test launches ``mpiexec -n N python tests/mpi_cases.py CASE OUTDIR`` with a timeout, so
a hang fails the test instead of stalling CI, and checks what the ranks wrote. The references
are computed here, in one process, with the same single BLAS thread the ranks use.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="pip install 'layerwise[mpi]'")

import layerwise as lw
from layerwise import data, threads

sys.path.insert(0, str(Path(__file__).parent))
import mpi_cases

CASES = Path(__file__).parent / "mpi_cases.py"


def _mpiexec():
    local = Path(sys.executable).parent / "mpiexec"
    found = str(local) if local.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec: pip install 'layerwise[mpi]' (brings MPICH's)")
    return found


def launch(ranks, case, out, *args, timeout=60, check=True):
    """Run CASE on ``ranks`` ranks; returns the CompletedProcess."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, str(CASES), case,
                             str(out), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def _weights(out, name="weights.npz"):
    with np.load(out / name) as loaded:
        weights = [loaded[f"arr_{i}"] for i in range(len(loaded.files))]
    facts = json.loads((out / (name + ".json")).read_text())
    return weights, facts


@pytest.fixture
def one_thread():
    """The references run with one BLAS thread, as each rank does."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), threads.fixed(1):
        yield


def _plain_fit(source, n=1001, optimizer="sgd", batch=64, epochs=3, tmp=None):
    lw.utils.set_random_seed(mpi_cases.SEED)
    x, y = mpi_cases.dataset(n)
    net = mpi_cases.model(optimizer)
    kwargs = dict(batch_size=batch, epochs=epochs, verbose=0, seed=7)
    if source == "memmap":
        np.save(tmp / "x.npy", x)
        net.fit(np.load(tmp / "x.npy", mmap_mode="r"), y, **kwargs)
    elif source == "sequence":
        del kwargs["batch_size"]
        net.fit(mpi_cases.Rows(x, y, batch), **kwargs)
    else:
        net.fit(x, y, **kwargs)
    return net.get_weights()


@pytest.mark.parametrize("source", ["arrays", "memmap", "sequence"])
def test_one_rank_equals_plain_fit_bit_for_bit(tmp_path, one_thread, source):
    launch(1, "fit", tmp_path, source)
    weights, _ = _weights(tmp_path)
    for ours, plain in zip(weights, _plain_fit(source, tmp=tmp_path)):
        np.testing.assert_array_equal(ours, plain)


def _accumulated(n, optimizer, batch, epochs, size):
    """One process applying, for each global batch, the sum over ``size`` shares of each
    share's gradient times its row count, divided by the batch's rows: the semantics of
    data-parallel fit, computed without MPI."""
    lw.utils.set_random_seed(mpi_cases.SEED)
    x, y = mpi_cases.dataset(n)
    net = mpi_cases.model(optimizer)
    net._begin("fit")
    x, y, _ = net._prepare(x, y)
    net._prepare_step()
    flat = net._grad_buffer
    for epoch in range(epochs):
        order = np.random.default_rng([7, epoch]).permutation(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            total = None
            for rank in range(size):
                part = idx[data.share(len(idx), rank, size)]
                if len(part):
                    net.compute_gradients(x[part], y[part])
                    grads = flat.copy()
                    grads *= len(part)
                else:
                    grads = np.zeros_like(flat)
                total = grads if total is None else total + grads
            total *= 1.0 / len(idx)
            flat[...] = total
            net.optimizer.apply(net._param_list, net._grad_list)
    return net.get_weights()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_ranks_equal_one_process_accumulating_the_two_shares(tmp_path, one_thread,
                                                                  optimizer):
    launch(2, "fit", tmp_path, "arrays", 1001, optimizer)
    weights, facts = _weights(tmp_path)
    assert len(set(facts["digests"])) == 1  # every rank holds the same weights
    for ours, reference in zip(weights, _accumulated(1001, optimizer, 64, 3, 2)):
        np.testing.assert_array_equal(ours, reference)


@pytest.mark.parametrize("ranks, n", [(3, 1001), (3, 321), (2, 321)])
def test_uneven_data_and_a_last_batch_smaller_than_the_ranks(tmp_path, one_thread, ranks, n):
    """n=321 with batch 64 leaves a last global batch of one row: the other ranks' parts are
    empty. Three ranks may add in another order than one process: equal to rounding."""
    launch(ranks, "fit", tmp_path, "arrays", n)
    weights, facts = _weights(tmp_path)
    assert len(facts["digests"]) == ranks and len(set(facts["digests"])) == 1
    for ours, reference in zip(weights, _accumulated(n, "sgd", 64, 3, ranks)):
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("source", ["memmap", "sequence"])
def test_two_ranks_stream_memmaps_and_sequences(tmp_path, source):
    launch(2, "fit", tmp_path, source)
    _, facts = _weights(tmp_path)
    assert len(set(facts["digests"])) == 1
    (tmp_path / "one").mkdir()
    launch(1, "fit", tmp_path / "one", source)
    _, single = _weights(tmp_path / "one")
    np.testing.assert_allclose(facts["history"]["loss"], single["history"]["loss"], rtol=1e-5)


def test_callbacks_act_in_lockstep_and_only_rank_0_writes(tmp_path):
    result = launch(2, "callbacks", tmp_path)
    ranks = json.loads((tmp_path / "callbacks.json").read_text())
    assert ranks[0]["stopped"] == ranks[1]["stopped"] > 0  # EarlyStopping: the same epoch
    assert ranks[0]["lr"] == ranks[1]["lr"] and len(set(ranks[0]["lr"])) > 1  # one history
    assert ranks[0]["val_loss"] == ranks[1]["val_loss"]  # sharded, reduced validation
    epochs = ranks[0]["epochs"]
    progress = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")
                and "/20 - " in line]
    assert len(progress) == epochs  # one progress line per epoch, from rank 0
    assert ranks[0]["writes"] == [f"ckpt-{e}.safetensors" for e in range(1, epochs + 1)]
    assert ranks[1]["writes"] == []
    lw.load_model(tmp_path / f"ckpt-{epochs}.safetensors")


def test_resume_with_dropout_at_two_ranks_is_bit_exact_and_carries_no_communicator(tmp_path):
    launch(2, "resume", tmp_path)
    facts = json.loads((tmp_path / "resume.json").read_text())
    assert facts["same"] == [True, True]  # 2 + 2 epochs equal 4 straight, on every rank
    assert facts["world_size"] == 2
    assert facts["context_pickles"] is False and facts["pickled_layers"] == 4


@pytest.mark.parametrize("case", ["error", "nonfinite"])
def test_a_failure_on_one_rank_ends_every_rank_with_an_error(tmp_path, case):
    start = time.monotonic()
    result = launch(2, case, tmp_path, timeout=30, check=False)
    assert result.returncode != 0
    assert time.monotonic() - start < 30
    # the first rank to abort may cut the others' tracebacks short: the error's own text is
    # not always printed whole, but an error (not a hang, not a success) always is
    output = result.stdout + result.stderr
    assert "Traceback" in output or "Abort" in output


def test_fit_starts_every_rank_from_rank_0s_state(tmp_path):
    launch(2, "broadcast", tmp_path)
    _, facts = _weights(tmp_path)
    assert len(set(facts["digests"])) == 1
    x, _ = mpi_cases.dataset(300)
    assert facts["mean"] == pytest.approx(float(x[:, 0].astype(np.float64).mean()))


def test_adapt_combines_every_ranks_rows(tmp_path):
    launch(3, "adapt", tmp_path)
    stats = np.load(tmp_path / "adapt.npz")
    x, _ = mpi_cases.dataset(1001)
    np.testing.assert_allclose(stats["mean"], x.astype(np.float64).mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(stats["variance"], x.astype(np.float64).var(axis=0), rtol=1e-12)


def test_outside_a_job_nothing_changes():
    assert lw.distributed.current() is None and lw.distributed.is_chief()


def test_a_sequence_learns_epoch_and_rank_and_may_read_only_its_rows(tmp_path):
    launch(2, "sequence_shards", tmp_path)
    facts = json.loads((tmp_path / "sequence.json").read_text())
    assert facts["runs"]["split"] == facts["runs"]["by_rank"]
    assert facts["told"] == [[0, 0, 2], [1, 0, 2]]  # rank 0's view: epochs 0 and 1 of 2 ranks


def test_the_command_line_trains_data_parallel(tmp_path):
    command = [_mpiexec(), "-n", "2", sys.executable, "-m", "layerwise", "train", "--dataset",
               "xor", "--hidden", "8", "--epochs", "3", "--distributed", "--out",
               str(tmp_path), "--no-plot", "--verbose", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("trained 3 epochs") == 1  # rank 0 reports, once
    assert result.stdout.count("Epoch 2/3") == 1
    assert lw.load_model(tmp_path / "model.safetensors").saved_world_size == 2


def test_the_distributed_example_runs_under_two_ranks(tmp_path):
    example = Path(__file__).parent.parent / "examples" / "distributed_mnist.py"
    result = subprocess.run([_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py",
                             str(example), "--epochs", "2", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    accuracy = float(result.stdout.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.85

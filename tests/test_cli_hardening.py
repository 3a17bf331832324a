"""Issue "Hardening", the command line: columns by name, targets, tasks, one-line errors,
the output folder, Ctrl-C, and the main job's reported interval."""

import csv
import re

import numpy as np
import pytest
from click.testing import CliRunner

from layerwise import callbacks
from layerwise.cli import cli
from layerwise.models import load_model


@pytest.fixture
def runner():
    return CliRunner()


def _write(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def houses(tmp_path):
    """price = 3·rooms - age + noise: a regression whose two features must not be swapped."""
    rng = np.random.default_rng(0)
    rooms, age = rng.uniform(1, 6, 300), rng.uniform(0, 50, 300)
    price = 3 * rooms - 0.1 * age + rng.normal(0, 0.05, 300)
    return _write(tmp_path / "houses.csv", ["rooms", "age", "price"],
                  zip(rooms.round(4), age.round(4), price.round(4)))


def _train(runner, data, out, *extra):
    result = runner.invoke(cli, ["train", str(data), "--hidden", "16", "--epochs", "40",
                                 "--out", str(out), "--no-plot", "--verbose", "0", *extra])
    assert result.exit_code == 0, result.output
    return result


def _predictions(runner, model, data):
    result = runner.invoke(cli, ["predict", str(model), str(data)])
    assert result.exit_code == 0, result.output
    return np.array([float(v) for v in result.output.split()[1:]])


# ---- 4. predict and evaluate select columns by name ---------------------------------------

def test_predict_selects_columns_by_name_and_refuses_what_does_not_match(runner, houses,
                                                                       tmp_path):
    _train(runner, houses, tmp_path / "run")
    model = tmp_path / "run" / "model.safetensors"
    net = load_model(model)
    assert net.feature_names == ["rooms", "age"] and net.target_name == "price"
    rows = list(csv.reader(open(houses)))[1:11]
    features = _write(tmp_path / "f.csv", ["rooms", "age"], [r[:2] for r in rows])
    swapped = _write(tmp_path / "s.csv", ["age", "rooms"], [[r[1], r[0]] for r in rows])
    np.testing.assert_allclose(_predictions(runner, model, swapped),
                               _predictions(runner, model, features), rtol=1e-5)
    np.testing.assert_allclose(_predictions(runner, model, houses)[:10],
                               _predictions(runner, model, features), rtol=1e-5)
    renamed = _write(tmp_path / "r.csv", ["rooms", "years"], [r[:2] for r in rows])
    extra = _write(tmp_path / "e.csv", ["rooms", "age", "garden"], [[*r[:2], 1] for r in rows])
    for path, expected in ((renamed, "missing: age; unknown: years"),
                           (extra, "unknown: garden")):
        result = runner.invoke(cli, ["predict", str(model), str(path)])
        assert result.exit_code == 1 and expected in result.output, result.output
        assert result.output.count("\n") == 1  # one line


def test_a_model_without_names_needs_the_exact_feature_count(runner, tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 3))
    np.save(tmp_path / "train.npy", np.hstack([x, x[:, :1] > 0]))
    _train(runner, tmp_path / "train.npy", tmp_path / "run")
    model = tmp_path / "run" / "model.safetensors"
    np.save(tmp_path / "wide.npy", np.hstack([x, x[:, :1]]))  # its last column was dropped
    result = runner.invoke(cli, ["predict", str(model), str(tmp_path / "wide.npy")])
    assert result.exit_code == 1 and "the model expects 3 features, but" in result.output


# ---- 5. values beyond float32 in a CSV ---------------------------------------------------------

def test_a_cell_beyond_float32_fails_naming_row_and_column(runner, houses, tmp_path):
    _train(runner, houses, tmp_path / "run")
    bad = _write(tmp_path / "bad.csv", ["rooms", "age"], [[1, 2], [3, "1e39"]])
    result = runner.invoke(cli, ["predict", str(tmp_path / "run" / "model.safetensors"),
                                 str(bad)])
    assert result.exit_code == 1
    assert "`x`[1, 1] is 1e+39, beyond the range of float32" in result.output


# ---- 6. integer targets: classes only when few and nearly contiguous ---------------------------

@pytest.mark.parametrize("labels, task", [
    (lambda rng: rng.choice(np.arange(170, 311, 12), 200), "regression"),
    (lambda rng: rng.choice([0, 1_000_000], 200), "regression"),
    (lambda rng: rng.integers(0, 2, 200), "binary"),
    (lambda rng: rng.integers(1, 6, 200), "multiclass"),
])
def test_integer_targets_are_classes_only_when_few_and_contiguous(runner, tmp_path, labels,
                                                                  task):
    rng = np.random.default_rng(0)
    y = labels(rng)
    path = _write(tmp_path / "d.csv", ["a", "b", "y"],
                  zip(rng.normal(size=200), rng.normal(size=200), y))
    result = _train(runner, path, tmp_path / "run", "--epochs", "1")
    assert f"task {task}" in result.output
    assert load_model(tmp_path / "run" / "model.safetensors").output_dim <= 6


def test_too_many_classes_are_refused_before_any_allocation(runner, tmp_path):
    rng = np.random.default_rng(0)
    path = _write(tmp_path / "d.csv", ["a", "y"], zip(rng.normal(size=20),
                                                      rng.choice([0, 1_000_000], 20)))
    result = runner.invoke(cli, ["train", str(path), "--task", "multiclass", "--out",
                                 str(tmp_path / "run")])
    assert result.exit_code == 1 and "would need 1000001 output units" in result.output


# ---- 7. the default target column ---------------------------------------------------------

def test_train_without_target_uses_the_last_column(runner, houses, tmp_path):
    result = _train(runner, houses, tmp_path / "run")
    assert "task regression" in result.output
    assert load_model(tmp_path / "run" / "model.safetensors").target_name == "price"


# ---- 11. one line, never a traceback -------------------------------------------------------

def test_a_diverging_run_is_one_line(runner, houses, tmp_path):
    result = runner.invoke(cli, ["train", str(houses), "--lr", "1e30", "--epochs", "5",
                                 "--dropout", "0", "--out", str(tmp_path / "run"),
                                 "--no-plot", "--verbose", "0"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error: ")
    assert "NaN or infinite" in error or "loss became" in error


def test_npz_of_different_lengths_is_one_line(runner, tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 2)), y=np.zeros(9))
    result = runner.invoke(cli, ["train", str(tmp_path / "d.npz"), "--out",
                                 str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "'x' and 'y' must have the same number of rows" in result.output


def test_memory_errors_are_one_line(runner, houses, tmp_path, monkeypatch):
    from layerwise import datasets

    def explode(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(datasets, "read_file", explode)
    result = runner.invoke(cli, ["train", str(houses), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and result.output.startswith("Error: out of memory")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_unwritable_out_is_refused_before_training(runner, houses, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    result = runner.invoke(cli, ["train", str(houses), "--target", "price", "--out",
                                 str(tmp_path / "taken" / "run"), "--epochs", "1"])
    assert result.exit_code != 0 and "trained" not in result.output
    assert "taken" in result.output


def test_ctrl_c_during_train_saves_the_best_model_so_far(runner, houses, tmp_path, monkeypatch):
    original = callbacks.EarlyStopping.on_epoch_end

    def interrupt_in_epoch_4(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(callbacks.EarlyStopping, "on_epoch_end", interrupt_in_epoch_4)
    result = runner.invoke(cli, ["train", str(houses), "--out", str(tmp_path / "run"),
                                 "--no-plot", "--verbose", "0"])
    assert result.exit_code != 0
    assert re.search(r"interrupted after 3 finished epochs; saved the best epoch's weights "
                     r"\(epoch \d", result.output), result.output
    assert (tmp_path / "run" / "model.safetensors").exists()


# ---- 15. the reported accuracy has its interval -------------------------------------------------

def test_accuracy_is_reported_with_its_95_percent_interval(runner, tmp_path):
    result = runner.invoke(cli, ["train", "--dataset", "xor", "--hidden", "8", "--epochs", "2",
                                 "--out", str(tmp_path / "run"), "--no-plot", "--verbose", "0"])
    assert result.exit_code == 0, result.output
    assert re.search(r"accuracy [\d.]+ \(95% interval [\d.]+-[\d.]+ on 100 samples\)",
                     result.output)


def test_wilson_interval():
    from layerwise.cli import wilson_interval

    low, high = wilson_interval(0.944, 1000)
    assert 0.927 < low < 0.929 and 0.956 < high < 0.958
    assert wilson_interval(1.0, 10)[1] == 1.0

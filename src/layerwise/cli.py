"""The ``layerwise`` command line: train, evaluate, predict, summary, datasets.

``layerwise train`` with no arguments trains the seed's handwriting network (784-500-500-10,
relu hidden layers, softmax, categorical cross-entropy, Adam, batch 100, up to 60 epochs,
early stopping with patience 8 on a 10% validation split, dropout 0.2, L2 1e-4: defaults
chosen by cross-validation on the training images, ``benchmarks/main_job_cv.py``) on the
bundled MNIST subset, prints test loss, accuracy with its 95% interval and a confusion matrix,
and saves the model and its training curves.

Every error (a missing file, an unknown column, a diverging run, running out of memory) is
one line on stderr and a non-zero exit status, never a traceback. A model remembers the names
of the columns it was trained on; ``predict`` and ``evaluate`` select columns by those names.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from typing import Any

import click
import numpy as np

from . import datasets

TASKS = ("auto", "multiclass", "binary", "regression")


#: the most classes a target may have (the output layer has one unit per class)
MAX_CLASSES = 10_000
#: integer targets are taken as classes without --task only up to this many distinct labels
MAX_INFERRED_CLASSES = 100

#: errors whose message says everything; any other error is shown with its type's name
_PLAIN_ERRORS = (ValueError, TypeError, FileNotFoundError, ImportError, OSError,
                 FloatingPointError)


class _Group(click.Group):
    """Turns every error into one line on stderr and exit status 1, never a traceback
    (set LAYERWISE_TRACEBACK=1 to see the traceback of an unexpected one)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (BrokenPipeError, click.exceptions.ClickException, click.exceptions.Exit,
                click.exceptions.Abort, KeyboardInterrupt, SystemExit):
            raise  # click's own, or handled by main()
        except Exception as exc:
            if os.environ.get("LAYERWISE_TRACEBACK"):
                raise
            text = str(exc).strip()
            message = text.splitlines()[0] if text else ""
            if isinstance(exc, MemoryError):
                message = ("out of memory" + (f": {message}" if message else "") +
                           "; try a smaller --batch-size, fewer or smaller --hidden layers, "
                           "or less data")
            elif isinstance(exc, RecursionError):
                message = "the input is nested too deeply to read"
            elif not isinstance(exc, _PLAIN_ERRORS) or not message:
                message = f"{type(exc).__name__}: {message or repr(exc)}"
            raise click.ClickException(message) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="layerwise", prog_name="layerwise")
def cli() -> None:
    """layerwise: fully connected neural networks, trained layer by layer on NumPy."""


# ---- data -----------------------------------------------------------------------------

def _infer_task(y: np.ndarray, class_names: list[Any] | None) -> str:
    """binary, multiclass or regression, from the target's values.

    String labels are classes. Numbers are classes only when they are a small, nearly
    contiguous set of non-negative integers (0/1; 0..9; 1..5): at most
    ``MAX_INFERRED_CLASSES`` labels covering at least half of 0..max. Anything else, such as
    prices 170..310 or labels {0, 1000000}, is regression; ``--task`` overrides.
    """
    if class_names is not None:
        return "binary" if len(class_names) == 2 else "multiclass"
    if y.ndim == 2 and y.shape[1] > 1:
        return "regression"
    values = np.unique(y)
    if values.size == 0 or not np.all(values == np.round(values)) or values.min() < 0:
        return "regression"
    top = float(values.max())
    if set(values.tolist()) <= {0, 1}:
        return "binary"
    if top < MAX_INFERRED_CLASSES and len(values) >= (top + 1) / 2:
        return "multiclass"
    return "regression"


def _class_count(y: np.ndarray, class_names: list[Any] | None, name: str) -> int:
    """Output units of a multi-class model of ``y``, after checking that the labels are
    class indices and that their count is bounded."""
    if class_names:
        return len(class_names)
    values = np.unique(y)
    if not np.all(values == np.round(values)) or values.min() < 0:
        raise ValueError(f"--task multiclass needs class labels 0, 1, 2, ...; {name} has "
                         f"values from {values.min():g} to {values.max():g}, not all "
                         "non-negative integers. Use --task regression.")
    count = int(values.max()) + 1
    if count > MAX_CLASSES:
        raise ValueError(f"{name}'s labels go up to {int(values.max())}, which would need "
                         f"{count} output units (at most {MAX_CLASSES}). Relabel the classes "
                         "0..k-1, or use --task regression.")
    return count


def _load_data(data: str | None, dataset: str | None, target: str | None, seed: int
               ) -> datasets.Dataset:
    """A bundled data set by name, or the user's file split 80/20 with ``seed``."""
    if data is not None and dataset is not None:
        raise click.UsageError("Give either a DATA file or --dataset, not both.")
    if data is None:
        return datasets.load(dataset or "mnist")
    if data.lower().endswith(".csv"):
        target = target or _csv_header(data)[-1]  # the help's default: the last column
    x, y, features, class_names = datasets.read_file(data, target or "last")
    if y is None:
        raise ValueError(f"{data} has no target: name its column with --target.")
    if x.ndim != 2:
        raise ValueError(f"{data}: features must be 2-D (samples, features).")
    if len(x) < 2:
        raise ValueError(f"{data} has {len(x)} sample; training needs at least 2 (some are "
                         "held out for testing).")
    x_train, y_train, x_test, y_test = datasets.train_test_split(x, y, 0.2, seed)
    dataset = datasets.Dataset(os.path.basename(data), x_train, y_train, x_test, y_test,
                               task=_infer_task(y, class_names), description=f"file {data}",
                               source=os.path.abspath(data), license="the user's",
                               feature_names=features, class_names=class_names)
    dataset.extra["target_name"] = target if data.lower().endswith(".csv") else None
    return dataset


def _csv_header(data: str) -> list[str]:
    if not os.path.exists(data):
        raise FileNotFoundError(f"No data file at {data!r}.")
    with open(data, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    if not header:
        raise ValueError(f"{data} is empty; a CSV file needs a header row.")
    return [name.strip() for name in header]


# ---- train ----------------------------------------------------------------------------

def _build(data: datasets.Dataset, task: str, hidden: list[int], activation: str,
           dropout: float, l2: float) -> tuple[Any, str, list[str]]:
    import layerwise as lw
    from layerwise.layers import Dense, Dropout, Normalization, Rescaling

    layers: list[Any] = []
    if "scale" in data.extra:  # images: a fixed pixel scale
        layers.append(Rescaling(data.extra["scale"], input_dim=data.n_features))
    else:  # tabular: standardise each feature with the training set's statistics
        norm = Normalization(input_dim=data.n_features)
        norm.adapt(data.x_train)
        layers.append(norm)
    regularizer = lw.regularizers.l2(l2) if l2 else None
    for units in hidden:
        layers.append(Dense(units, activation=activation, kernel_initializer="he_uniform"
                            if "relu" in activation else "glorot_uniform",
                            kernel_regularizer=regularizer))
        if dropout:
            layers.append(Dropout(dropout))
    if task == "multiclass":
        n_classes = _class_count(np.concatenate([data.y_train, data.y_test]), data.class_names,
                                 data.name)
        layers.append(Dense(n_classes, activation="softmax"))
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    elif task == "binary":
        layers.append(Dense(1, activation="sigmoid"))
        loss, metrics = "binary_crossentropy", ["accuracy"]
    else:
        outputs = 1 if data.y_train.ndim == 1 else data.y_train.shape[1]
        layers.append(Dense(outputs))
        loss, metrics = "mse", ["mae"]
    return lw.Sequential(layers, name=f"{data.name}_model"), loss, metrics


def _parse_hidden(value: str) -> list[int]:
    try:
        units = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 500,500; "
                                 f"got {value!r}") from None
    if any(u <= 0 for u in units):
        raise click.BadParameter(f"layer sizes must be positive; got {value!r}")
    return units


def _report(model: Any, x: np.ndarray, y: np.ndarray, task: str,
            class_names: list[Any] | None) -> dict[str, float]:
    """Print test loss and metrics (plus a confusion matrix or R²); return them."""
    from layerwise import metrics as lw_metrics

    values = model.evaluate(x, y, verbose=0)
    values = values if isinstance(values, list) else [values]
    names = ["loss", *(m.name for m in model.metrics)]
    result = dict(zip(names, (float(v) for v in values)))
    line = "test " + ", ".join(f"{k} {v:.4f}" for k, v in result.items())
    if "accuracy" in result:  # how far the figure could be from the truth on this many images
        low, high = wilson_interval(result["accuracy"], len(x))
        line += f" (95% interval {low:.3f}-{high:.3f} on {len(x)} samples)"
    click.echo(line)
    predictions = model.predict(x)
    if task in ("multiclass", "binary"):
        predicted = (predictions.argmax(axis=1) if task == "multiclass"
                     else (predictions[:, 0] > 0.5).astype(int))
        labels = class_names or list(range(max(predictions.shape[1], 2)))
        n = max(len(labels), 2)
        matrix = lw_metrics.confusion_matrix(y.astype(int), predicted, n)
        click.echo(_format_confusion(matrix, [str(c) for c in labels][:n]))
    else:
        result["r2"] = float(lw_metrics.r2_score(y, predictions))
        click.echo(f"test R² {result['r2']:.4f}")
    return result


def wilson_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of an accuracy measured on ``n`` independent samples."""
    if n <= 0:
        return 0.0, 1.0
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _format_confusion(matrix: np.ndarray, labels: list[str]) -> str:
    width = max(5, *(len(s) for s in labels), len(str(matrix.max())) + 1)
    lines = ["confusion matrix (rows: true class, columns: predicted class)",
             " " * width + "".join(s.rjust(width) for s in labels)]
    for label, row in zip(labels, matrix):
        lines.append(label.rjust(width) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


@cli.command()
@click.argument("data", required=False, type=click.Path(dir_okay=False))
@click.option("--dataset", help="a bundled data set (see `layerwise datasets`); default mnist")
@click.option("--target", help="target column of a CSV DATA file (default: the last column)")
@click.option("--task", type=click.Choice(TASKS), default="auto", show_default=True,
              help="what to predict; auto: from the target's values")
@click.option("--hidden", default="500,500", show_default=True,
              help="hidden layer sizes, comma-separated")
@click.option("--activation", default="relu", show_default=True, help="hidden activation")
@click.option("--optimizer", default="adam", show_default=True)
@click.option("--lr", type=float, default=None, help="learning rate (optimizer's default)")
@click.option("--batch-size", type=int, default=100, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=60, show_default=True,
              help="most epochs (early stopping usually ends sooner)")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.2,
              show_default=True, help="dropout rate after each hidden layer")
@click.option("--l2", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="L2 penalty on hidden kernels")
@click.option("--validation-split", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True)
@click.option("--patience", type=click.IntRange(min=0), default=8, show_default=True,
              help="early-stopping patience on val_loss (0: no early stopping)")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="out", show_default=True,
              help="folder for model.safetensors and history.png")
@click.option("--plot/--no-plot", default=True, show_default=True,
              help="save the training curves as a PNG (needs matplotlib)")
@click.option("--verbose", type=click.IntRange(0, 2), default=1, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="gpu: train on an NVIDIA GPU through CuPy (needs layerwise[gpu])")
@click.option("--distributed", is_flag=True,
              help="data-parallel over the ranks of an MPI job: mpiexec -n 4 layerwise train "
              "--distributed (needs layerwise[mpi]); --batch-size is the global batch")
def train(data: str | None, dataset: str | None, target: str | None, task: str, hidden: str,
          activation: str, optimizer: str, lr: float | None, batch_size: int, epochs: int,
          dropout: float, l2: float, validation_split: float, patience: int, seed: int,
          out: str, plot: bool, verbose: int, device: str, distributed: bool) -> None:
    """Train a network on DATA (.csv/.npy/.npz) or a bundled data set and save it.

    With no arguments: the seed's handwriting network on the MNIST subset. The defaults
    (up to 60 epochs, early stopping with patience 8 on a 10% validation split, dropout 0.2,
    L2 1e-4, Adam at 1e-3) were chosen by 5-fold cross-validation on the MNIST training
    images only (benchmarks/main_job_cv.py). Ctrl-C stops training and saves the model as it
    is then (the best epoch's weights, with early stopping).
    """
    import layerwise as lw
    from layerwise.saving import check_writable_folder

    check_writable_folder(out)  # before training, not after it
    if device == "gpu":
        lw.backend.set_backend("cupy")  # a clear error, naming the extra, without CuPy or GPU
    lw.utils.set_random_seed(seed)
    if distributed:
        context = lw.distributed.init(seed=seed)
        if not context.is_chief:  # rank 0 reports; the others train quietly
            sys.stdout = open(os.devnull, "w")
    units = _parse_hidden(hidden)
    source = _load_data(data, dataset, target, seed)
    inferred = data is not None and task == "auto"
    task = source.task if task == "auto" else task
    if task == "binary" and not set(np.unique(source.y_train).tolist()) <= {0, 1}:
        raise ValueError(f"--task binary needs 0/1 targets; {source.name} has values from "
                         f"{source.y_train.min():g} to {source.y_train.max():g}.")
    click.echo(f"data: {source.name}, {len(source.x_train)} training and {len(source.x_test)} "
               f"test samples, {source.n_features} features, task {task}"
               + (" (inferred from the target; --task to change)" if inferred else ""))
    model, loss, metric_names = _build(source, task, units, activation, dropout, l2)
    model.class_names = source.class_names if task != "regression" else None
    model.feature_names = source.feature_names
    model.target_name = source.extra.get("target_name")
    opt = lw.optimizers.get(optimizer)
    if lr is not None:
        opt = type(opt).from_config({**opt.get_config(), "learning_rate": lr})
    model.compile(optimizer=opt, loss=loss, metrics=metric_names)
    if verbose:
        model.summary(print_fn=click.echo)
    cbs = []
    if patience and validation_split:
        cbs.append(lw.callbacks.EarlyStopping("val_loss", patience=patience,
                                              restore_best_weights=True, verbose=verbose))
    path = os.path.join(out, "model.safetensors")
    start = time.perf_counter()
    try:
        history = model.fit(source.x_train, source.y_train, batch_size=batch_size,
                            epochs=epochs, validation_split=validation_split, callbacks=cbs,
                            verbose=verbose)
    except KeyboardInterrupt:
        _save_interrupted(model, cbs, path)
        raise
    click.echo(f"trained {len(history.epoch)} epochs in {time.perf_counter() - start:.1f} s")
    _report(model, source.x_test, source.y_test, task, source.class_names)
    model.save(path)
    click.echo(f"saved model to {path}")
    if plot:
        try:
            from . import plot as lw_plot

            png = os.path.join(out, "history.png")
            lw_plot.history(history, path=png)
            click.echo(f"saved training curves to {png}")
        except ImportError as exc:
            click.echo(f"no plot: {exc}", err=True)


def _save_interrupted(model: Any, callbacks: list[Any], path: str) -> None:
    """After Ctrl-C in ``fit`` (which already ran on_train_end: EarlyStopping restored its
    best weights): save what was trained, and say which weights those are."""
    finished = len(model.history.epoch) if model.history is not None else 0
    if not finished:
        click.echo("\ninterrupted before the first epoch ended; nothing saved", err=True)
        return
    stopper = next((cb for cb in callbacks if getattr(cb, "best_weights", None) is not None),
                   None)
    which = (f"the best epoch's weights (epoch {stopper.best_epoch + 1}, val_loss "
             f"{stopper.best:.4f})" if stopper is not None
             else "the weights as they were when interrupted")
    model.save(path)
    click.echo(f"\ninterrupted after {finished} finished epochs; saved {which} to {path}",
               err=True)


# ---- evaluate / predict / summary / datasets ------------------------------------------

def _load(model_path: str) -> Any:
    from .saving import load_model

    return load_model(model_path)


def _features_for(model: Any, data: str, target: str | None, need_target: bool
                  ) -> tuple[np.ndarray, Any]:
    """Features (and targets, if present) of DATA, matched to what the model was trained on.

    A CSV file's columns are selected by name when the model knows its feature names (they
    may come in any order; a missing, renamed or unknown column is refused); otherwise the
    file must have exactly the model's number of features besides the target. The target is
    ``--target``, else the model's target column, else (for a model without names, when a
    target is needed) the last column. Other files must match the feature count exactly.
    """
    if not data.lower().endswith(".csv"):
        x, y, _, _ = datasets.read_file(data, target)
        if need_target and y is None:
            raise ValueError(f"{data} has no target to evaluate against: give --target last "
                             "for a .npy file whose last column is the target, or a .npz "
                             "with an array 'y'.")
        if x.ndim != 2 or x.shape[1] != model.input_dim:
            raise ValueError(f"the model expects {model.input_dim} features, but {data} has "
                             f"{x.shape[1] if x.ndim == 2 else x.shape}"
                             f"{' after removing the target column' if target else ''}.")
        return x, y
    header = _csv_header(data)
    names = model.feature_names
    if target is None and model.target_name in header:
        target = model.target_name
    if target is None and need_target:
        if names is not None:
            raise ValueError(f"{data} has no target column {model.target_name!r}; name it "
                             "with --target.")
        target = header[-1]
    if target is not None and target not in header:
        raise ValueError(f"{data} has no column {target!r}. Columns: {', '.join(header)}")
    if names is not None:
        missing = [n for n in names if n not in header]
        unknown = [h for h in header if h not in names and h != target]
        if missing or unknown:
            raise ValueError(
                f"{data}'s columns do not match the model's features"
                + (f"; missing: {', '.join(missing[:10])}" if missing else "")
                + (f"; unknown: {', '.join(unknown[:10])}" if unknown else "")
                + f". The model was trained on {len(names)} features"
                + (f" and the target {model.target_name!r}" if model.target_name else "")
                + ".")
    elif len(header) - (target is not None) != model.input_dim:
        raise ValueError(f"the model expects {model.input_dim} features, but {data} has "
                         f"{len(header) - (target is not None)} columns besides "
                         f"{'the target ' + repr(target) if target else 'no target'}; name an "
                         "extra target column with --target.")
    x, y, _, class_labels = datasets.read_csv(data, target, columns=names)
    if y is not None and class_labels is not None and model.class_names is not None:
        index = {str(c): i for i, c in enumerate(model.class_names)}
        unknown_classes = sorted({str(class_labels[v]) for v in np.unique(y)} - set(index))
        if unknown_classes:
            raise ValueError(f"{data} has classes {unknown_classes} that the model does not "
                             f"know ({', '.join(map(str, model.class_names))}).")
        y = np.array([index[str(class_labels[v])] for v in y])
    return x, y


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data", required=False, type=click.Path(dir_okay=False))
@click.option("--dataset", help="evaluate on the test split of a bundled data set")
@click.option("--target", help="target column of a CSV DATA file (default: the last column)")
def evaluate(model: str, data: str | None, dataset: str | None, target: str | None) -> None:
    """Evaluate a saved MODEL on DATA or a bundled data set's test split."""
    net = _load(model)
    if net.loss is None:
        raise ValueError(f"{model} was saved without compile settings, so it has no loss.")
    class_names = net.class_names
    if data is None:
        source = datasets.load(dataset or "mnist")
        x, y = source.x_test, source.y_test
        class_names = class_names or source.class_names
        if x.shape[1] != net.input_dim:
            raise ValueError(f"the model expects {net.input_dim} features, but {source.name} "
                             f"has {x.shape[1]}.")
    else:
        x, y = _features_for(net, data, target, need_target=True)
    if "crossentropy" not in net.loss.name:
        task = "regression"
    else:
        task = "binary" if net.output_dim == 1 else "multiclass"
    _report(net, x, y, task, class_names)


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path())
@click.option("-o", "--output", type=click.Path(),
              help="write the predictions to this CSV file (default: standard output); for "
              "a folder DATA, the folder for one CSV per input file")
@click.option("--target", help="a target column in DATA to ignore (.npy: 'last' drops the "
              "last column); the model's own target column is ignored by itself")
@click.option("--scheduler", help="a Dask scheduler's address (tcp://host:8786): predict a "
              "folder DATA on that cluster, a file per task (needs layerwise[dask])")
def predict(model: str, data: str, output: str | None, target: str | None,
            scheduler: str | None) -> None:
    """Predict DATA (.csv/.npy/.npz, features only or with a target column) with MODEL.

    Classification: the class and one probability column per class; regression: the value.
    DATA may be a folder of such files: each gets OUTPUT/<name>.csv.
    """
    net = _load(model)
    if os.path.isdir(data):
        _predict_folder(model, net, data, output, target, scheduler)
        return
    if scheduler is not None:
        raise click.UsageError("--scheduler predicts a folder of files; DATA is one file.")
    x, _ = _features_for(net, data, target, need_target=False)
    text, count = _prediction_csv(net, net.predict(x))
    if output:
        from .saving import atomic_write

        atomic_write(output, text.encode("utf-8"))
        click.echo(f"wrote {count} predictions to {output}")
    else:
        sys.stdout.write(text)


def _prediction_csv(net: Any, outputs: np.ndarray) -> tuple[str, int]:
    """The CSV text of ``outputs`` (class and probabilities, or values) and its row count."""
    classifier = net.loss is not None and "crossentropy" in net.loss.name
    if classifier:
        probabilities = (np.hstack([1 - outputs, outputs]) if outputs.shape[1] == 1
                         else outputs)
        names = net.class_names or list(range(probabilities.shape[1]))
        header = ["class", *(f"p_{c}" for c in names)]
        rows = [[names[int(i)], *(f"{p:.6g}" for p in row)]
                for i, row in zip(probabilities.argmax(axis=1), probabilities)]
    else:
        header = ["prediction"] if outputs.shape[1] == 1 else [
            f"prediction_{i}" for i in range(outputs.shape[1])]
        rows = [[f"{v:.6g}" for v in row] for row in outputs]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue(), len(rows)


def _predict_folder(model: str, net: Any, folder: str, output: str | None,
                    target: str | None, scheduler: str | None) -> None:
    from .dask import predict_files
    from .saving import atomic_write, check_writable_folder

    files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith((".csv", ".npy", ".npz")))
    if not files:
        raise ValueError(f"{folder} holds no .csv, .npy or .npz files.")
    if output is None:
        raise click.UsageError("a folder DATA needs -o OUTPUT, the folder for the results.")
    check_writable_folder(output)
    results = predict_files(model, files, scheduler=scheduler, target=target)
    for path, outputs in zip(files, results):
        text, count = _prediction_csv(net, outputs)
        name = os.path.splitext(os.path.basename(path))[0] + ".csv"
        atomic_write(os.path.join(output, name), text.encode("utf-8"))
        click.echo(f"wrote {count} predictions to {os.path.join(output, name)}")


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
def summary(model: str) -> None:
    """Print the layers, shapes and parameter counts of a saved MODEL."""
    net = _load(model)
    net.summary(print_fn=click.echo)
    if net.loss is not None:
        settings = net.get_compile_config()
        click.echo(f"loss: {settings['loss']['class_name']}, optimizer: "
                   f"{settings['optimizer']['class_name']} "
                   f"({json.dumps(settings['optimizer']['config'])}), "
                   f"steps trained: {net.optimizer.iterations}")
    if net.class_names is not None:
        click.echo(f"classes: {', '.join(map(str, net.class_names))}")


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--opset", type=int, default=None, help="ONNX opset (default 20, at least 18)")
def export(model: str, output: str, opset: int | None) -> None:
    """Export a saved MODEL to ONNX at OUTPUT (needs the onnx package)."""
    from .export import to_onnx

    to_onnx(_load(model), output, opset=opset)
    click.echo(f"wrote {output}")


@cli.command(name="datasets")
def datasets_command() -> None:
    """List the bundled data sets, their size, source and licence."""
    for row in datasets.describe():
        click.echo(f"{row['name']}: {row['samples'] or '-'} ({row.get('task', '?')}); "
                   f"{row.get('description', '')}")
        if row["available"] == "yes":
            click.echo(f"    source: {row['source']}; licence: {row['license']}")
        else:
            click.echo(f"    not available here: {row['available'][4:]}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="the address to listen on; any but a loopback address needs the token "
              "printed at start")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--no-browser", is_flag=True, help="do not open the page in a browser")
@click.option("--token", help="the token the page needs (default: a random one when --host "
              "is not a loopback address, none otherwise)")
def playground(host: str, port: int, no_browser: bool, token: str | None) -> None:
    """A local web page where layerwise trains small networks while you watch.

    Pick a data set, features, layers, activation, optimizer and more; watch the decision
    region, every neuron, the weights, the losses, the gradient norm of each layer and the
    dead ReLUs change as it trains. Needs the extra: pip install 'layerwise[playground]'.
    """
    import errno
    import socket

    try:
        from .playground.server import serve
    except ImportError as error:
        raise click.ClickException(str(error)) from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:  # say so before uvicorn does
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = "is in use" if error.errno == errno.EADDRINUSE else f"({error.strerror})"
            raise click.ClickException(f"cannot listen on {host}:{port}: the port {reason}; "
                                       "try --port with another number") from None
    serve(host=host, port=port, open_browser=not no_browser, token=token)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``layerwise`` console script and ``python -m layerwise``."""
    try:
        cli.main(args=argv, prog_name="layerwise")
    except BrokenPipeError:
        # output piped into a program that stopped reading (e.g. `| head`): no error message
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)

""""Show the code": the Python that reproduces a playground run with layerwise."""

from __future__ import annotations

from typing import Any

from . import data


def run_code(settings: dict[str, Any], epochs: int, regression: bool) -> str:
    """A script that makes the same data, builds and compiles the same network, trains it
    for ``epochs`` epochs (at least 1) and prints the test loss."""
    s = settings
    if s["dataset"] == "upload":
        making = ["# your CSV: columns x1, x2, label",
                  'with open("points.csv") as handle:',
                  "    x, y, _ = data.parse_csv(handle.read())"]
    else:
        making = [f'x, y = data.generate({s["dataset"]!r}, n={s["points"]}, '
                  f'noise={s["noise"]!r}, seed={s["seed"]})']
    batch = "len(x_train)" if s["batch_size"] == "all" else str(s["batch_size"])
    loss = "mse" if regression else "binary_crossentropy"
    metrics = "" if regression else ', metrics=["accuracy"]'
    lines = [
        '"""A layerwise playground run as a script."""',
        "import layerwise as lw",
        "from layerwise.layers import Dense, Dropout, Maxout, PReLU, RReLU",
        "from layerwise.playground import data",
        "",
        *making,
        f'x_train, y_train, x_test, y_test = data.split(x, y, {s["train_fraction"]!r}, '
        f'seed={s["seed"]})',
        f"features = {s['features']!r}  # of x1, x2: {', '.join(data.FEATURES)}",
        "x_train, x_test = data.features(x_train, features), data.features(x_test, features)",
        "",
        f"lw.utils.set_random_seed({s['seed']})",
        "model = lw.Sequential([",
        *(f"    {row}," for row in _layers(s, regression)),
        "])",
        f"model.compile(optimizer={_optimizer(s)}, loss={loss!r}{metrics})",
        "model.summary()",
        f"model.fit(x_train, y_train.reshape(-1, 1), batch_size={batch}, "
        f"epochs={max(1, epochs)}, verbose=0)",
        'print("test", model.evaluate(x_test, y_test.reshape(-1, 1), verbose=0))',
    ]
    return "\n".join(lines) + "\n"


def _layers(s: dict[str, Any], regression: bool) -> list[str]:
    act, rows = s["activation"], []
    options = f"kernel_initializer={s['initializer']!r}"
    if s["regularization"] != "none" and s["regularization_rate"] > 0:
        kind = s["regularization"]
        options += f", kernel_regularizer=lw.regularizers.{kind.upper()}" \
                   f"({s['regularization_rate']!r})"
    for index, units in enumerate(s["hidden"]):
        first = f", input_dim={len(s['features'])}" if index == 0 else ""
        if act == "maxout":
            rows.append(f"Maxout({units}, {options}{first})")
        elif act in ("prelu", "rrelu"):
            rows.append(f"Dense({units}, {options}{first})")
            rows.append("PReLU()" if act == "prelu" else f"RReLU(seed={s['seed'] + index})")
        else:
            rows.append(f"Dense({units}, activation={act!r}, {options}{first})")
        if s["dropout"] > 0:
            rows.append(f"Dropout({s['dropout']!r}, seed={s['seed'] + 100 + index})")
    first = "" if s["hidden"] else f", input_dim={len(s['features'])}"
    output = "None" if regression else repr("sigmoid")
    rows.append(f"Dense(1, activation={output}, {options}{first})")
    return rows


def _optimizer(s: dict[str, Any]) -> str:
    lr = repr(s["learning_rate"])
    steps, rate = s["decay_steps"], s["decay_rate"]
    schedule = {
        "none": lr,
        "exponential": f"lw.optimizers.schedules.ExponentialDecay({lr}, {steps}, {rate!r})",
        "inverse_time": f"lw.optimizers.schedules.InverseTimeDecay({lr}, {steps}, {rate!r})",
        "cosine": f"lw.optimizers.schedules.CosineDecay({lr}, {steps})",
    }[s["decay"]]
    name = s["optimizer"]
    if name == "nesterov":
        return f"lw.optimizers.SGD({schedule}, momentum=0.9, nesterov=True)"
    from ..optimizers.registry import OPTIMIZERS

    return f"lw.optimizers.{OPTIMIZERS.lookup(name).__name__}({schedule})"

"""predict's paths on configs B, C and D: numba's BLAS (or the layers, above
``compiled.PREDICT_MAX_WEIGHTS``), oneDNN with each thread on its own rows, and what
``"auto"`` measured and chose (``blas.predict_library``).

Each (config, path) runs in its own process (thread pools keep spinning after use), in
alternating order, ``--runs`` times; each process predicts 8192 rows in batches of 1024
after a warm-up and reports the best and the median of 5. Samples per second.

    python benchmarks/predict_paths.py [--configs B,C,D] [--runs 2]

Run with ``OPENBLAS_CORETYPE`` unset (see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

SIZES = {"B": [64, 128, 10], "C": [784, 512, 512, 10], "D": [1024, 4096, 4096, 10]}
PATHS = {"numba BLAS / layers": "numpy", "oneDNN, rows per thread": "onednn",
         "auto": "auto"}


def child(config: str, choice: str) -> None:
    import numpy as np

    import layerwise as lw
    from layerwise.layers import Dense

    lw.blas.set_blas(choice)
    sizes = SIZES[config]
    layers = [Dense(sizes[1], activation="relu", input_dim=sizes[0])]
    layers += [Dense(units, activation="relu") for units in sizes[2:-1]]
    model = lw.Sequential([*layers, Dense(sizes[-1], activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", jit_compile=True)
    x = np.random.default_rng(0).standard_normal((8192, sizes[0])).astype(np.float32)
    model.predict(x, batch_size=1024)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        model.predict(x, batch_size=1024)
        times.append(time.perf_counter() - start)
    print(json.dumps({"best": 8192 / min(times), "median": 8192 / sorted(times)[2],
                      "decisions": {str(k): v for k, v in lw.blas.predict_decisions.items()}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="B,C,D")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    for config in args.configs.split(","):
        seen: dict[str, list[float]] = {name: [] for name in PATHS}
        chosen = []
        for run in range(args.runs):
            for name in list(PATHS)[::1 if run % 2 == 0 else -1]:
                out = subprocess.run([sys.executable, __file__, "--child", config,
                                      PATHS[name]], capture_output=True, text=True, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                seen[name] += [result["best"], result["median"]]
                if PATHS[name] == "auto":
                    chosen += [d["chosen"] for d in result["decisions"].values()]
        figures = ", ".join(f"{name} {min(v) / 1e3:,.1f}k-{max(v) / 1e3:,.1f}k"
                            for name, v in seen.items())
        print(f"{config}: {figures} (auto chose {', '.join(chosen)})")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()

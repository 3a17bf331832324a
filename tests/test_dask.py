"""layerwise on a real local Dask cluster (two worker processes): batch inference and
scikit-learn's hyper-parameter search through joblib's Dask backend."""

import numpy as np
import pytest
from click.testing import CliRunner

distributed = pytest.importorskip("dask.distributed", reason="pip install 'layerwise[dask]'")
da = pytest.importorskip("dask.array")

import layerwise.dask  # noqa: E402
from layerwise.cli import cli  # noqa: E402
from layerwise.layers import Dense  # noqa: E402
from layerwise.models import Sequential  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, host="127.0.0.1")
    with distributed.Client(cluster) as connected:
        yield connected
    cluster.close()


@pytest.fixture
def saved(tmp_path):
    model = Sequential([Dense(16, activation="relu", input_dim=5), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(1000, 5)).astype("float32")
    model.fit(x, (x[:, 0] > 0).astype(int), epochs=1, verbose=0)
    path = tmp_path / "m.safetensors"
    model.save(path)
    return path, model, x


def test_dask_predict_equals_model_predict_and_loads_once_per_worker(client, saved):
    path, model, x = saved
    result = layerwise.dask.predict(path, da.from_array(x, chunks=(100, 5)))
    assert result.shape == (1000, 3) and result.chunks[0] == (100,) * 10
    np.testing.assert_allclose(result.compute(), model.predict(x), rtol=1e-6, atol=1e-7)
    loads = client.run(lambda: layerwise.dask._LOADS[0])
    assert len(loads) == 2 and all(count <= 1 for count in loads.values())
    assert sum(loads.values()) >= 1


def test_dask_predict_refuses_the_wrong_feature_count(saved):
    path, _, x = saved
    with pytest.raises(ValueError, match="has 4 features, but the model expects input_dim=5"):
        layerwise.dask.predict(path, da.from_array(x[:, :4], chunks=(100, 4)))


def test_cli_predicts_a_folder_on_the_cluster(client, saved, tmp_path):
    path, model, x = saved
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        np.save(folder / f"part-{i}.npy", x[i * 100:(i + 1) * 100])
    result = CliRunner().invoke(cli, ["predict", str(path), str(folder), "-o",
                                      str(tmp_path / "out"), "--scheduler",
                                      client.scheduler.address])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["part-0.csv", "part-1.csv", "part-2.csv"]
    rows = (tmp_path / "out" / "part-1.csv").read_text().splitlines()
    assert len(rows) == 101
    probabilities = np.array([[float(v) for v in r.split(",")[1:]] for r in rows[1:]])
    np.testing.assert_allclose(probabilities, model.predict(x[100:200]), rtol=1e-5)


def test_grid_search_on_the_cluster_equals_n_jobs_1(client):
    from joblib import parallel_backend
    from sklearn.model_selection import GridSearchCV

    from layerwise.sklearn import DenseClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    grid = {"hidden_layer_sizes": [(4,), (8,)], "learning_rate": [0.01, 0.003]}

    def search(n_jobs):
        return GridSearchCV(DenseClassifier(epochs=5, random_state=0), grid, cv=3,
                            n_jobs=n_jobs)

    local = search(1).fit(x, y)
    with parallel_backend("dask"):
        remote = search(-1).fit(x, y)
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    assert remote.best_params_ == local.best_params_

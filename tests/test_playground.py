"""The playground: its settings checks, its runs, and its server's WebSocket protocol (through
Starlette's test client): every control, hostile messages, two sessions at once, the update
rate and the size of what is sent."""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest

import layerwise as lw
from layerwise.playground import data
from layerwise.playground.session import (
    ACTIVATIONS,
    DEFAULTS,
    GRID,
    MAX_LAYERS,
    MAX_NEURONS,
    OPTIMIZER_NAMES,
    Run,
    SettingsError,
    check_settings,
)

# -- data and settings (no server needed) ---------------------------------------------------


@pytest.mark.parametrize("name", [d for d in data.DATASETS if d != "upload"])
def test_every_dataset_is_generated_in_the_square(name):
    x, y = data.generate(name, 300, 0.1, seed=1)
    assert x.shape == (300, 2) and y.shape == (300,) and x.dtype == np.float32
    assert np.all(np.abs(x) < 9)
    if data.is_regression(name):
        assert len(np.unique(y)) > 10
    else:
        assert set(np.unique(y)) == {0.0, 1.0}
    again, _ = data.generate(name, 300, 0.1, seed=1)
    np.testing.assert_array_equal(x, again)


def test_features_are_the_functions_of_x1_and_x2():
    x = np.array([[1.0, 2.0], [-0.5, 3.0]], dtype=np.float32)
    f = data.features(x, list(data.FEATURES))
    expected = np.array([[1, 2, 1, 4, 2, np.sin(1), np.sin(2)],
                         [-0.5, 3, 0.25, 9, -1.5, np.sin(-0.5), np.sin(3)]])
    np.testing.assert_allclose(f, expected, rtol=1e-6)


def test_csv_upload_is_parsed_and_bad_files_are_refused():
    x, _, regression = data.parse_csv("a,b,label\n0,0,0\n1,1,1\n2,0,1\n0,2,0\n")
    assert x.shape == (4, 2) and not regression and np.abs(x).max() == pytest.approx(5)
    _, _, regression = data.parse_csv("0,0,0.3\n1,1,1.5\n2,0,1\n0,2,-2\n")
    assert regression
    with pytest.raises(ValueError, match="3 columns"):
        data.parse_csv("0,0\n1,1\n2,2\n3,3\n")
    with pytest.raises(ValueError, match="row 2 must hold numbers"):
        data.parse_csv("0,0,1\n1,x,0\n2,2,1\n3,3,0\n")
    with pytest.raises(ValueError, match="finite"):
        data.parse_csv("0,0,1\n1,nan,0\n2,2,1\n3,3,0\n")
    with pytest.raises(ValueError, match="at least 4 rows"):
        data.parse_csv("")
    with pytest.raises(ValueError, match="at most"):
        data.parse_csv("0,0,1\n" * (data.MAX_UPLOAD_ROWS + 1))


@pytest.mark.parametrize("changes, message", [
    ({"learning_rate": float("nan")}, "learning_rate` must be a number above 0"),
    ({"learning_rate": 0}, "Received: learning_rate=0"),
    ({"learning_rate": "fast"}, "must be a number"),
    ({"hidden": [4] * (MAX_LAYERS + 1)}, f"at most {MAX_LAYERS}"),
    ({"hidden": [MAX_NEURONS + 1]}, "from 1 to 16"),
    ({"hidden": [10**12]}, "Received: hidden=1000000000000"),
    ({"hidden": "big"}, "must be a list"),
    ({"points": 10**9}, "points` must be an integer from 20 to 2000"),
    ({"activation": "rleu"}, "Did you mean 'relu'"),
    ({"optimizer": "adamm"}, "Did you mean 'adam'"),
    ({"features": []}, "non-empty list"),
    ({"features": ["x3"]}, "features` must be one of"),
    ({"dropout": 1.0}, "from 0 to 0.9"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": True}, "must be an integer"),
    ({"learning_rte": 0.1}, "Did you mean 'learning_rate'"),
])
def test_bad_settings_name_the_field_the_value_and_what_is_allowed(changes, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace("[", r"\[")):
        check_settings(changes)


def test_every_activation_and_optimizer_trains():
    for activation in ACTIVATIONS:
        run = Run({**DEFAULTS, "activation": activation, "points": 60, "hidden": [3]})
        run.train(epochs=2)
        state = run.state()
        assert state["epoch"] == 2 and len(state["neurons"]) == 1, activation
        assert len(state["neurons"][0]) == 3
    for optimizer in OPTIMIZER_NAMES:
        run = Run({**DEFAULTS, "optimizer": optimizer, "points": 60, "decay": "cosine"})
        run.train(epochs=2)
        assert run.history[-1][1] is not None, optimizer


def test_xor_with_products_trains_to_high_accuracy():
    run = Run({**DEFAULTS, "dataset": "xor", "features": ["x1", "x2", "x1_x2"],
               "hidden": [4], "optimizer": "adam", "learning_rate": 0.03})
    for _ in range(40):
        run.train(epochs=1)
    assert run.accuracy()["test"] >= 0.95
    assert run.history[-1][2] < run.history[0][2]


def test_state_has_what_the_page_draws():
    run = Run({**DEFAULTS, "hidden": [8, 8], "activation": "relu",
               "regularization": "l2", "regularization_rate": 0.01, "dropout": 0.1})
    state = run.state(full=True)
    out = state["output"]
    assert (out["rows"], out["cols"]) == (GRID, GRID)
    assert len(base64.b64decode(out["bytes"])) == GRID * GRID
    assert [len(layer) for layer in state["neurons"]] == [8, 8]
    assert [np.array(w).shape for w in state["weights"]] == [(2, 8), (8, 8), (8, 1)]
    assert len(state["gradient_norms"]) == 3 and all(g > 0 for g in state["gradient_norms"])
    assert len(state["dead"]) == 2
    assert state["history"][0][0] == 0


def test_a_diverging_run_says_so_and_its_state_is_still_sent():
    run = Run({**DEFAULTS, "learning_rate": 10.0, "activation": "exponential",
               "hidden": [16, 16], "optimizer": "adam"})
    for _ in range(10):
        run.train(epochs=5)
    assert run.diverged.startswith("Training stopped: The loss became")
    assert "learning rate" in run.diverged
    json.dumps(run.state(), allow_nan=False)  # no NaN reaches the page
    run.reset()
    assert run.diverged == "" and run.epoch == 0


def test_dead_relus_are_counted():
    run = Run({**DEFAULTS, "hidden": [4], "activation": "relu"})
    kernel = run.model.layers[0].params
    kernel["kernel"][:, :2] = 0.0
    kernel["bias"][:2] = -1.0  # these two units output 0 everywhere
    assert run.dead_units() == [2]


def test_vanishing_gradients_show_in_the_norms():
    deep = Run({**DEFAULTS, "hidden": [8] * 8, "activation": "sigmoid"})
    norms = deep.gradient_norms()
    assert norms[0] < norms[-1] / 10  # seed 002: sigmoid layers shrink the gradient


def test_the_code_reproduces_the_network(tmp_path):
    settings = {**DEFAULTS, "hidden": [5, 3], "activation": "prelu", "optimizer": "nesterov",
                "decay": "exponential", "regularization": "l1",
                "regularization_rate": 0.001, "dropout": 0.1}
    run = Run(settings)
    run.train(epochs=3)
    code = run.code()
    namespace: dict = {}
    exec(compile(code, "playground_code.py", "exec"), namespace)
    model = namespace["model"]
    def unnamed(m):
        return [{**layer["config"], "name": None} for layer in m.get_config()["layers"]]

    assert unnamed(model) == unnamed(run.model)
    assert model.optimizer.get_config() == run.model.optimizer.get_config()
    assert "epochs=3" in code


def test_the_model_file_loads_with_load_model(tmp_path):
    run = Run({**DEFAULTS, "hidden": [6], "activation": "maxout"})
    run.train(epochs=2)
    path = tmp_path / "model.safetensors"
    path.write_bytes(run.safetensors())
    loaded = lw.models.load_model(str(path))
    np.testing.assert_allclose(loaded.predict(run.x_test, verbose=0),
                               run.model.predict(run.x_test, verbose=0), rtol=1e-6)


# -- the server ------------------------------------------------------------------------------

starlette = pytest.importorskip("starlette", reason="the playground server needs the "
                                "extra: pip install 'layerwise[playground]'")
pytest.importorskip("httpx2", reason="Starlette's test client needs httpx2")
from starlette.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from layerwise.playground import server  # noqa: E402


@pytest.fixture
def client():
    with TestClient(server.create_app()) as c:
        yield c


class Page:
    """One tab's WebSocket, reading replies until the kind wanted."""

    def __init__(self, socket):
        self.socket = socket
        self.seen: list[dict] = []

    def send(self, **message):
        self.socket.send_text(json.dumps(message))

    def until(self, kind, limit=50):
        for _ in range(limit):
            message = self.socket.receive_json()
            self.seen.append(message)
            if message["type"] == kind:
                return message
        raise AssertionError(f"no {kind!r} in {limit} messages: "
                             f"{[m['type'] for m in self.seen[-limit:]]}")


def _open(client, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.websocket_connect("/ws" + (f"?{query}" if query else ""))


def test_the_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "static/app.js" in page.text
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text


def test_a_session_starts_with_choices_points_and_a_state(client):
    with _open(client) as ws:
        page = Page(ws)
        init = page.until("init")
        assert init["options"]["limits"]["layers"] == MAX_LAYERS
        assert set(init["options"]["activations"]) >= {"prelu", "rrelu", "maxout", "elu"}
        points = page.until("points")
        assert len(points["train"]) + len(points["test"]) == DEFAULTS["points"]
        state = page.until("state")
        assert state["runs"][0]["epoch"] == 0


def test_every_control(client):
    with _open(client) as ws:
        page = Page(ws)
        page.until("state")
        page.send(type="step")
        assert page.until("state")["runs"][0]["epoch"] == 1
        changes = [{"dataset": "xor"}, {"noise": 0.2}, {"train_fraction": 0.7},
                   {"points": 200}, {"features": ["x1", "x2", "x1_x2", "sin_x1"]},
                   {"hidden": [3, 4, 2]}, {"activation": "relu"}, {"optimizer": "adamw"},
                   {"learning_rate": 0.1}, {"decay": "inverse_time", "decay_steps": 10,
                                            "decay_rate": 0.5},
                   {"batch_size": "all"}, {"initializer": "he_normal"},
                   {"regularization": "l2", "regularization_rate": 0.01}, {"dropout": 0.2},
                   {"dataset": "plane"}, {"dataset": "bumps"}, {"dataset": "p1p2"}]
        for change in changes:
            page.send(type="settings", run=0, settings=change)
            state = page.until("state")
            for key, value in change.items():
                assert state["runs"][0]["settings"][key] == value, key
        run = state["runs"][0]
        assert [len(w[0]) for w in run["weights"]] == [3, 4, 2, 1]
        page.send(type="regenerate")
        assert page.until("points")
        page.send(type="reset")
        assert page.until("state")["runs"][0]["epoch"] == 0
        page.send(type="activation", name="elu")
        curve = page.until("activation")
        assert len(curve["x"]) == len(curve["y"]) == len(curve["dy"]) == 201
        assert curve["dy"][-1] == pytest.approx(1.0)
        page.send(type="code", run=0)
        assert "lw.Sequential" in page.until("code")["code"]
        page.send(type="download", run=0)
        model = page.until("model")
        assert model["filename"].endswith(".safetensors") and base64.b64decode(model["data"])
        page.send(type="play")
        first = page.until("state")["runs"][0]["epoch"]
        later = page.until("state")["runs"][0]["epoch"]
        assert later > first
        page.send(type="pause")
        state = page.until("state")
        while state["playing"]:
            state = page.until("state")


def test_side_by_side_runs_share_the_data(client):
    with _open(client) as ws:
        page = Page(ws)
        page.until("state")
        page.send(type="compare", on=True)
        state = page.until("state")
        assert len(state["runs"]) == 2
        page.send(type="settings", run=1, settings={"activation": "relu", "batch_size": 1})
        state = page.until("state")
        assert state["runs"][1]["settings"]["activation"] == "relu"
        assert state["runs"][0]["settings"]["activation"] == DEFAULTS["activation"]
        page.send(type="settings", run=1, settings={"dataset": "spiral"})
        state = page.until("state")
        assert [r["settings"]["dataset"] for r in state["runs"]] == ["spiral", "spiral"]
        page.send(type="step")
        state = page.until("state")
        assert [r["epoch"] for r in state["runs"]] == [1, 1]
        page.send(type="compare", on=False)
        assert len(page.until("state")["runs"]) == 1


def test_upload_and_a_bad_upload(client):
    with _open(client) as ws:
        page = Page(ws)
        page.until("state")
        rows = "\n".join(f"{i % 7},{i % 5},{i % 2}" for i in range(40))
        page.send(type="upload", csv="x1,x2,label\n" + rows)
        points = page.until("points")
        assert len(points["train"]) + len(points["test"]) == 40
        assert page.until("state")["runs"][0]["settings"]["dataset"] == "upload"
        page.send(type="upload", csv="this is not,a csv\n1,2\n")
        assert "Upload refused" in page.until("error")["message"]
        page.send(type="step")  # the session goes on
        assert page.until("state")["runs"][0]["epoch"] == 1


HOSTILE = [
    ("not json at all", "must be JSON"),
    ("[1, 2, 3]", "JSON objects"),
    (json.dumps({"type": "explode"}), "`type` must be one of"),
    (json.dumps({"type": "play", "extra": 1}), "Unknown field 'extra'"),
    ('{"type": "settings", "run": 0, "settings": {"learning_rate": NaN}}', "not a number"),
    (json.dumps({"type": "settings", "run": 0, "settings": {"learning_rate": -1}}),
     "learning_rate"),
    (json.dumps({"type": "settings", "run": 0, "settings": {"hidden": [16] * 1000}}),
     "at most 8"),
    (json.dumps({"type": "settings", "run": 0, "settings": {"points": 10**12}}), "points"),
    (json.dumps({"type": "settings", "run": 5, "settings": {}}), "`run` must be 0"),
    (json.dumps({"type": "settings", "run": 0, "settings": [1]}), "must be an object"),
    (json.dumps({"type": "compare", "on": "yes"}), "`on` must be true or false"),
    (json.dumps({"type": "activation", "name": "x" * 1000}), "`name` must be one of"),
    ("[" * 100_000 + "]" * 100_000, "JSON"),
    (json.dumps({"type": "upload", "csv": "1,2,3\n" * 2_000_000}), "at most"),  # 12 MB
]


def test_hostile_messages_get_an_error_and_the_session_goes_on(client):
    with _open(client) as ws:
        page = Page(ws)
        page.until("state")
        for text, expected in HOSTILE:
            ws.send_text(text)
            error = page.until("error")
            assert expected in error["message"], (text[:60], error["message"])
        ws.send_bytes(b"\x00\x01")
        assert "binary" in page.until("error")["message"]
        page.send(type="step")
        assert page.until("state")["runs"][0]["epoch"] == 1


def test_two_sessions_train_independently(client):
    with _open(client) as one, _open(client) as two:
        a, b = Page(one), Page(two)
        a.until("state")
        b.until("state")
        a.send(type="settings", run=0, settings={"activation": "relu"})
        a.until("state")
        a.send(type="step")
        b.send(type="step")
        b.send(type="step")
        assert a.until("state")["runs"][0]["epoch"] == 1
        b.until("state")
        state_b = b.until("state")
        assert state_b["runs"][0]["epoch"] == 2
        assert state_b["runs"][0]["settings"]["activation"] == DEFAULTS["activation"]


def test_a_closed_tab_stops_its_training(client, monkeypatch):
    trained = []
    original = server.Session.train

    def counting(self):
        trained.append(time.perf_counter())
        original(self)

    monkeypatch.setattr(server.Session, "train", counting)
    with _open(client) as ws:
        page = Page(ws)
        page.until("state")
        page.send(type="play")
        page.until("state")
        page.until("state")
    time.sleep(0.5)
    count = len(trained)
    time.sleep(0.5)
    assert len(trained) == count  # nothing trains after the tab closed


def test_updates_are_live_and_small(client):
    """At least 10 states a second for a 2-8-8-1 network on 500 points, each no bigger than
    what the page draws (50x50 maps as bytes, not pixels)."""
    with _open(client) as ws:
        page = Page(ws)
        page.until("state")
        page.send(type="settings", run=0, settings={"hidden": [8, 8], "points": 500,
                                                    "activation": "relu"})
        page.until("state")
        page.send(type="play")
        page.until("state")
        start, sizes = time.perf_counter(), []
        while time.perf_counter() - start < 3.0:
            text = ws.receive_text()
            if json.loads(text)["type"] == "state":
                sizes.append(len(text))
        rate = len(sizes) / (time.perf_counter() - start)
        page.send(type="pause")
    print(f"{rate:.1f} updates per second, largest state {max(sizes)} bytes")
    assert rate >= 10, f"{rate:.1f} updates per second"
    assert max(sizes) < 30_000, max(sizes)


def test_the_biggest_network_sends_a_bounded_state(client):
    with _open(client) as ws:
        page = Page(ws)
        page.until("state")
        page.send(type="settings", run=0, settings={"hidden": [MAX_NEURONS] * MAX_LAYERS,
                                                    "points": 2000})
        page.until("points")
        ws_text = None
        page.send(type="step")
        for _ in range(5):
            ws_text = ws.receive_text()
            if json.loads(ws_text)["type"] == "state":
                break
    assert len(ws_text) < 120_000


def test_a_token_is_required_when_set_and_other_sites_are_refused():
    with TestClient(server.create_app(token="s3cret")) as client:
        assert client.get("/").status_code == 403
        assert client.get("/?token=s3cret").status_code == 200
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws") as ws:
            ws.receive_json()
        with client.websocket_connect("/ws?token=s3cret") as ws:
            assert ws.receive_json()["type"] == "init"
    with TestClient(server.create_app()) as client:
        headers = {"origin": "http://evil.example"}
        with pytest.raises(WebSocketDisconnect) as refused, \
                client.websocket_connect("/ws", headers=headers) as ws:
            ws.receive_json()
        assert refused.value.code == 4403


def test_serve_needs_a_token_beyond_loopback(monkeypatch, capsys):
    import uvicorn

    started = {}

    class FakeServer:
        def __init__(self, config):
            started["config"] = config

        def run(self):
            started["ran"] = True

    monkeypatch.setattr(uvicorn, "Server", FakeServer)
    server.serve(host="0.0.0.0", port=9999, open_browser=False)
    out = capsys.readouterr().out
    assert "?token=" in out and started["ran"]
    server.serve(host="127.0.0.1", port=9999, open_browser=False)
    assert "?token=" not in capsys.readouterr().out
    assert started["config"].host == "127.0.0.1"


def test_the_command_says_when_the_port_is_taken():
    import socket

    from click.testing import CliRunner

    from layerwise.cli import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["playground", "--port", str(port), "--no-browser"])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output

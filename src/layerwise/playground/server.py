"""The playground's web server: the page, and one WebSocket per browser tab, each training
its own runs with layerwise while the page watches.

Messages are JSON objects with a ``type``. The page sends ``settings`` (``run``: 0 or 1,
``settings``: the changed fields), ``play``, ``pause``, ``step``, ``reset``, ``regenerate``,
``compare`` (``on``), ``upload`` (``csv``: the file's text), ``code``, ``download`` and
``activation`` (``name``). The server answers ``init`` (the choices and limits, once),
``points``, ``state`` (one entry per run: heat maps, weights, losses, gradient norms, dead
units), ``code``, ``model`` (the ``.safetensors`` bytes in base64), ``activation`` (the
function and its derivative, computed by layerwise) and ``error`` (a message the page
shows). Every message is checked; nothing a page sends can stop the server or make it
allocate beyond the stated limits.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import secrets
import time
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from .. import activations
from . import data
from .session import (
    ACTIVATIONS,
    DATA_KEYS,
    DECAYS,
    DEFAULTS,
    GRID,
    INITIALIZERS,
    MAX_LAYERS,
    MAX_NEURONS,
    MAX_POINTS,
    MIN_POINTS,
    OPTIMIZER_NAMES,
    REGULARIZATION,
    Run,
    SettingsError,
    check_settings,
)

try:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, PlainTextResponse, Response
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.staticfiles import StaticFiles
    from starlette.websockets import WebSocket, WebSocketDisconnect
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("The playground needs Starlette and uvicorn: "
                      "pip install 'layerwise[playground]'") from error

#: the largest message the page may send (a CSV of MAX_UPLOAD_ROWS rows fits)
MAX_MESSAGE = 1_000_000
#: at most this many states per second are sent; training fills the time between them
MAX_UPDATES_PER_SECOND = 25
#: seconds of training between two states (shared by the runs of a comparison)
TRAIN_SECONDS = 0.035
#: fields each message type may have besides ``type``
MESSAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "settings": ("run", "settings"), "play": (), "pause": (), "step": (), "reset": (),
    "regenerate": (), "compare": ("on",), "upload": ("csv",), "code": ("run",),
    "download": ("run",), "activation": ("name",),
}


class MessageError(ValueError):
    """A message from the page that is not valid JSON of a known shape."""


def options() -> dict[str, Any]:
    """The page's choices and limits (sent once, in ``init``)."""
    return {
        "datasets": list(data.DATASETS), "regression": list(data.REGRESSION),
        "features": {k: v[0] for k, v in data.FEATURES.items()},
        "activations": list(ACTIVATIONS), "optimizers": list(OPTIMIZER_NAMES),
        "decays": list(DECAYS), "initializers": list(INITIALIZERS),
        "regularization": list(REGULARIZATION), "defaults": DEFAULTS,
        "limits": {"layers": MAX_LAYERS, "neurons": MAX_NEURONS, "points": [MIN_POINTS,
                   MAX_POINTS], "upload_rows": data.MAX_UPLOAD_ROWS, "grid": GRID,
                   "message_bytes": MAX_MESSAGE},
    }


def activation_curve(name: str) -> dict[str, Any]:
    """The activation ``name`` and its derivative on [-5, 5], computed by layerwise's own
    ``forward`` and ``derivative`` (PReLU at its initial slope 0.25, RReLU at its inference
    slope; Maxout has no fixed shape: it learns one)."""
    if name not in ACTIVATIONS:
        raise MessageError(f"`name` must be one of {', '.join(ACTIVATIONS)}. "
                           f"Received: name={str(name)[:40]!r}")
    z = np.linspace(-5, 5, 201).reshape(-1, 1)
    note = ""
    if name == "maxout":
        return {"name": name, "x": [], "y": [], "dy": [],
                "note": "Maxout takes the largest of several linear pieces: it learns its "
                        "shape, so there is no fixed curve to draw."}
    if name in ("prelu", "rrelu"):
        slope = 0.25 if name == "prelu" else (1 / 8 + 1 / 3) / 2
        act = activations.get({"class_name": "leaky_relu", "config": {"negative_slope": slope}})
        note = (f"negative slope {slope:.3g}: learned, from this initial value" if
                name == "prelu" else f"negative slope {slope:.3g}: random in training, its "
                "mean at inference")
    else:
        act = activations.get(name)
    y = act.forward(z.copy())
    dy = act.derivative(z.copy(), y)
    return {"name": name, "x": z[:, 0].round(4).tolist(),
            "y": np.nan_to_num(y[:, 0]).round(5).tolist(),
            "dy": np.nan_to_num(np.broadcast_to(dy, z.shape)[:, 0]).round(5).tolist(),
            "note": note}


def parse_message(text: Any) -> dict[str, Any]:
    """A message from the page, checked for size, JSON, type and fields."""
    if not isinstance(text, str):
        raise MessageError("Messages must be JSON text, not binary.")
    if len(text) > MAX_MESSAGE:
        raise MessageError(f"Messages may be at most {MAX_MESSAGE} bytes. "
                           f"Received: {len(text)} bytes")
    try:
        message = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise MessageError(f"Messages must be JSON objects. Received: not JSON "
                           f"({str(error)[:80]})") from None
    if not isinstance(message, dict):
        raise MessageError(f"Messages must be JSON objects. Received: "
                           f"{type(message).__name__}")
    kind = message.get("type")
    if kind not in MESSAGE_FIELDS:
        raise MessageError(f"`type` must be one of {', '.join(MESSAGE_FIELDS)}. "
                           f"Received: type={str(kind)[:40]!r}")
    extra = set(message) - {"type", *MESSAGE_FIELDS[kind]}
    if extra:
        raise MessageError(f"Unknown field {sorted(extra)[0][:40]!r} in a {kind!r} message. "
                           f"Allowed: {', '.join(MESSAGE_FIELDS[kind]) or 'none'}")
    return message


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


class Session:
    """One tab: one or two runs (side by side) on the same data, played or paused."""

    def __init__(self) -> None:
        self.runs = [Run()]
        self.playing = False
        self.upload: tuple[np.ndarray, np.ndarray, bool] | None = None

    def _run_index(self, message: dict[str, Any]) -> int:
        index = message.get("run", 0)
        if isinstance(index, bool) or index not in range(len(self.runs)):
            raise MessageError(f"`run` must be 0{' or 1' if len(self.runs) > 1 else ''}. "
                               f"Received: run={str(index)[:20]!r}")
        return int(index)

    def handle(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Apply one checked message; the replies to send, in order."""
        kind = message["type"]
        if kind == "play":
            self.playing = True
            return [self.state_message()]
        if kind == "pause":
            self.playing = False
            return [self.state_message()]
        if kind == "step":
            self.playing = False
            for run in self.runs:
                run.train(epochs=1)
            return [self.state_message()]
        if kind == "reset":
            for run in self.runs:
                run.reset()
            return [self.state_message(full=True)]
        if kind == "regenerate":
            seed = (self.runs[0].settings["seed"] + 1) % (2**31 - 1)
            return self._set_data({"seed": seed})
        if kind == "compare":
            on = message.get("on")
            if not isinstance(on, bool):
                raise MessageError(f"`on` must be true or false. Received: on={on!r}")
            if on and len(self.runs) == 1:
                self.runs.append(Run(self.runs[0].settings, self.upload))
            elif not on:
                del self.runs[1:]
            return [*self._points(), self.state_message(full=True)]
        if kind == "settings":
            index = self._run_index(message)
            changes = message.get("settings")
            check_settings(changes, self.runs[index].settings)  # all or nothing
            shared = {k: v for k, v in changes.items() if k in DATA_KEYS}
            own = {k: v for k, v in changes.items() if k not in DATA_KEYS}
            replies = self._set_data(shared) if shared else []
            if own:
                self.runs[index].update(own)
            return [*replies, self.state_message(full=True)] if own or not shared else replies
        if kind == "upload":
            text = message.get("csv")
            if not isinstance(text, str):
                raise MessageError("`csv` must be the file's text.")
            try:
                self.upload = data.parse_csv(text)
            except ValueError as error:
                raise MessageError(f"Upload refused: {error}") from None
            for run in self.runs:
                run.upload = self.upload
            return self._set_data({"dataset": "upload"}, force=True)
        if kind == "code":
            index = self._run_index(message)
            return [{"type": "code", "run": index, "code": self.runs[index].code()}]
        if kind == "download":
            index = self._run_index(message)
            content = self.runs[index].safetensors()
            return [{"type": "model", "run": index,
                     "filename": f"layerwise-playground-{'ab'[index]}.safetensors",
                     "data": base64.b64encode(content).decode("ascii")}]
        if kind == "activation":
            return [{"type": "activation", **activation_curve(message.get("name"))}]
        raise AssertionError(kind)  # parse_message admits only the kinds above

    def _set_data(self, changes: dict[str, Any], force: bool = False) -> list[dict[str, Any]]:
        for run in self.runs:
            before = run.settings
            run.settings = check_settings(changes, before)
            if force or run.settings != before:
                run.reset(new_data=True)
        return [*self._points(), self.state_message(full=True)]

    def _points(self) -> list[dict[str, Any]]:
        return [{"type": "points", "run": i, **run.points_message()}
                for i, run in enumerate(self.runs)]

    def train(self) -> None:
        """One stretch of training for every run (in a worker thread)."""
        for run in self.runs:
            run.train(TRAIN_SECONDS / len(self.runs))

    def state_message(self, full: bool = False) -> dict[str, Any]:
        return {"type": "state", "playing": self.playing, "full": full,
                "runs": [run.state(full=full) for run in self.runs]}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def create_app(token: str | None = None) -> Starlette:
    """The playground's ASGI app. With a ``token``, the page and its WebSocket need
    ``?token=...`` (``serve`` sets one whenever the host is not a loopback address)."""

    def allowed(connection: Any) -> bool:
        if token is not None and not secrets.compare_digest(
                str(connection.query_params.get("token", "")), token):
            return False
        # a page of another site must not drive a local playground (cross-site WebSocket)
        origin = connection.headers.get("origin")
        if origin:
            return urlsplit(origin).netloc == connection.headers.get("host", "")
        return True

    async def page(request: Request) -> Response:
        if not allowed(request):
            return PlainTextResponse("Forbidden: open the address printed when the "
                                     "playground started (it carries the token).", 403)
        html = resources.files(__package__).joinpath("static/index.html").read_text("utf-8")
        return HTMLResponse(html)

    async def socket(websocket: WebSocket) -> None:
        if not allowed(websocket):
            await websocket.close(code=4403)
            return
        await websocket.accept()
        await serve_session(websocket)

    static = StaticFiles(directory=str(resources.files(__package__).joinpath("static")))
    return Starlette(routes=[Route("/", page), WebSocketRoute("/ws", socket),
                             Mount("/static", static, name="static")])


async def serve_session(websocket: WebSocket) -> None:
    """One tab's session: messages are applied between stretches of training; a closed tab
    ends it (and its training)."""
    session = Session()
    inbox: asyncio.Queue[Any] = asyncio.Queue(maxsize=64)

    async def receive() -> None:
        try:
            while True:
                event = await websocket.receive()
                if event["type"] == "websocket.disconnect":
                    break
                await inbox.put(event.get("text") if event.get("text") is not None
                                else event.get("bytes"))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            await inbox.put(None)

    async def send(message: dict[str, Any]) -> None:
        await websocket.send_text(json.dumps(message, allow_nan=False, default=str))

    async def apply(text: Any) -> None:
        try:
            replies = await asyncio.to_thread(session.handle, parse_message(text))
        except (MessageError, SettingsError) as error:
            replies = [{"type": "error", "message": str(error)}]
        except Exception as error:  # a bug must not end the session: say what happened
            replies = [{"type": "error", "message": f"{type(error).__name__}: "
                                                    f"{str(error)[:300]}"}]
        for reply in replies:
            await send(reply)

    reader = asyncio.create_task(receive())
    try:
        await send({"type": "init", "options": options(),
                    "settings": [run.settings for run in session.runs]})
        for reply in [*session._points(), session.state_message(full=True)]:
            await send(reply)
        while True:
            if not session.playing:
                text = await inbox.get()
                if text is None:
                    return
                await apply(text)
                continue
            while not inbox.empty():  # what the page said while the last stretch trained
                text = inbox.get_nowait()
                if text is None:
                    return
                await apply(text)
            if not session.playing:
                continue
            started = time.perf_counter()
            await asyncio.to_thread(session.train)
            await send(await asyncio.to_thread(session.state_message))
            rest = 1 / MAX_UPDATES_PER_SECOND - (time.perf_counter() - started)
            if rest > 0:
                await asyncio.sleep(rest)
    except (WebSocketDisconnect, RuntimeError):
        return  # the tab went away mid-send
    finally:
        reader.cancel()


def serve(host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True,
          token: str | None = None) -> None:
    """Run the playground until Ctrl-C. Any host but a loopback address needs a token (a
    random one unless given), printed in the address to open."""
    import uvicorn

    if token is None and not _is_loopback(host):
        token = secrets.token_urlsafe(16)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"layerwise playground: {url}  (Ctrl-C stops it)", flush=True)
    config = uvicorn.Config(create_app(token), host=host, port=port, log_level="warning",
                            ws_max_size=4 * MAX_MESSAGE)
    server = uvicorn.Server(config)
    if open_browser:
        import threading
        import webbrowser

        def opener() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                webbrowser.open(url)

        threading.Thread(target=opener, daemon=True).start()
    server.run()

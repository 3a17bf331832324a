"""A local web page where layerwise trains while you watch: ``layerwise playground``.

The page (HTML, JavaScript and CSS in ``static/``, shipped with the package, nothing from the
network) shows TensorFlow Playground's pictures driven by layerwise itself: decision regions,
every neuron's heat map, weights, loss curves; and the seeds' own: gradient norms per layer,
dead ReLUs, each activation with its derivative, two configurations side by side, the code of
the current run and its model as a ``.safetensors`` file. The server needs the optional extra
``pip install 'layerwise[playground]'`` (Starlette and uvicorn); ``data`` and ``session``
need only layerwise.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve"]


def create_app(token: str | None = None) -> Any:
    """The playground's ASGI app (see ``layerwise.playground.server.create_app``)."""
    from .server import create_app as make

    return make(token)


def serve(host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True,
          token: str | None = None) -> None:
    """Start the playground server (see ``layerwise.playground.server.serve``)."""
    from .server import serve as run

    run(host, port, open_browser, token)

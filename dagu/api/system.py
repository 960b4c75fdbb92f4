"""/health and /metrics (Prometheus text format 0.0.4, written by hand)."""
from __future__ import annotations

import time

from dagu import __version__
from dagu.api.server import Request, Response, json_response
from dagu.runrecord import rfc3339


def health(req: Request) -> Response:
    app = req.app
    return json_response({"status": "healthy", "version": __version__,
                          "uptime": int(time.monotonic() - app.started),
                          "timestamp": rfc3339(app.clock.now())})


def metrics(req: Request) -> Response:
    from dagu.api.metrics import render
    return Response(200, render(req.app).encode(), "text/plain; version=0.0.4; charset=utf-8")

"""What every handler shares (config, store, DAG registry, run launcher, metrics), and the
route table of the whole API."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dagu.api.router import Router
from dagu.clock import Clock
from dagu.config import Config
from dagu.dags import DagRegistry
from dagu.store import RunStore


@dataclass
class App:
    config: Config
    store: RunStore
    registry: DagRegistry
    launch: Callable[[list[str]], None]      # start `dagu <args>` as a detached runner
    clock: Clock = field(default_factory=Clock)
    started: float = field(default_factory=time.monotonic)
    scheduler_running: bool = False
    metrics: object = None


def build_router() -> Router:
    """Every operation of the v2 reference, with its permission."""
    from dagu.api import dags, runs, system
    r = Router()
    r.add("GET", "/health", system.health, public=True)
    r.add("GET", "/metrics", system.metrics)
    dags.register(r)
    runs.register(r)
    return r

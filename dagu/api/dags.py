"""/api/v2/dags... handlers."""
from __future__ import annotations


def register(router) -> None:
    """Add the DAG routes."""

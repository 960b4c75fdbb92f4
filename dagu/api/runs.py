"""/api/v2/dag-runs... handlers."""
from __future__ import annotations


def register(router) -> None:
    """Add the run routes."""

"""Prometheus text exposition (format 0.0.4) of dagu_* metrics."""
from __future__ import annotations


def render(app) -> str:
    return ""

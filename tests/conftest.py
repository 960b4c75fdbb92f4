"""Shared fixtures."""
from __future__ import annotations

import pytest

from tests.apiclient import start_server


@pytest.fixture
def api(tmp_path):
    """A real `dagu start-all` on 127.0.0.1 with a fresh DAGU_HOME (tmp_path/home)."""
    server = start_server(tmp_path / "home")
    try:
        yield server
    finally:
        server.stop()

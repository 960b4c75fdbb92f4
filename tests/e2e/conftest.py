"""Fixtures for end-to-end tests: the real dagu.pyz, built once per session, and a bare venv."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ZIPAPP = ROOT / "dagu.pyz"


@pytest.fixture(scope="session")
def zipapp() -> Path:
    """Build dagu.pyz at the project root with build_zipapp.sh (fresh for every session)."""
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ROOT / "build_zipapp.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"build_zipapp.sh failed:\n{proc.stdout}\n{proc.stderr}"
    assert ZIPAPP.is_file()
    return ZIPAPP


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv's python with no pip and no PyYAML: only what dagu.pyz carries can be imported."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                   check=True, capture_output=True, timeout=60)
    return venv / "bin" / "python"


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a dagu process that keeps it away from the real home."""
    home = tmp_path / "home"
    dagu_home = tmp_path / "dagu-home"
    home.mkdir()
    dagu_home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DAGU_", "PYTHON", "XDG_"))}
    env.update(HOME=str(home), DAGU_HOME=str(dagu_home), LC_ALL="C.UTF-8")
    return env

"""Dagu's own test cases (../shared/conformance) against the built dagu.pyz, strictly."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT.parent / "shared" / "conformance" / "run_conformance.py"


@pytest.mark.slow
@pytest.mark.skipif(not RUNNER.is_file(), reason="../shared/conformance is not next to the project")
def test_every_conformance_case_passes(zipapp):
    # The runner changes into each case's DAGs folder, so the implementation path is absolute.
    proc = subprocess.run([sys.executable, str(RUNNER), "--impl", f"{sys.executable} {zipapp}",
                           "--strict"], capture_output=True, text=True, timeout=600)
    last = proc.stdout.strip().splitlines()[-1]
    failures = [line for line in proc.stdout.splitlines() if " FAIL " in line]
    assert proc.returncode == 0 and " 0 failed" in last, "\n".join(failures) or proc.stdout[-3000:]

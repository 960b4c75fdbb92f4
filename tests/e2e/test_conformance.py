"""Dagu's own test cases (../shared/conformance) against the built dagu.pyz, strictly."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT.parent / "shared" / "conformance" / "run_conformance.py"
# The cases mostly wait on sleeps and process starts, so groups run side by side.
GROUPS = (["-k", "digraph/"], ["-k", "integration/"], ["-k", "cmd/", "-k", "agent/"])


@pytest.mark.slow
@pytest.mark.skipif(not RUNNER.is_file(), reason="../shared/conformance is not next to the project")
def test_every_conformance_case_passes(zipapp):
    # The runner changes into each case's DAGs folder, so the implementation path is absolute.
    procs = [subprocess.Popen([sys.executable, str(RUNNER), "--impl", f"{sys.executable} {zipapp}",
                               "--strict", *group], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for group in GROUPS]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    report = "\n".join(outputs)
    failures = [line for line in report.splitlines() if " FAIL " in line]
    totals = [out.strip().splitlines()[-1] for out in outputs]
    assert all(p.returncode == 0 for p in procs) and not failures, "\n".join(failures) or report[-3000:]
    assert sum(int(t.split()[0]) for t in totals) >= 95, totals   # every case ran

"""Every command in README.md works as written, against the built dagu.pyz."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from tests.apiclient import free_port

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def commands(block: str) -> list[str]:
    out = []
    for line in block.splitlines():
        line = re.split(r"\s{2,}#", line)[0].strip()
        if line:
            out.append(line)
    return out


def test_readme_has_the_two_commands():
    cmds = [c for b in blocks("sh") for c in commands(b)]
    assert "bash build_zipapp.sh" in cmds
    assert "python3 -m pytest -q" in cmds
    assert any("dagu.pyz start-all" in c for c in cmds)


def test_every_readme_command_runs(zipapp, run_env, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(zipapp, work / "dagu.pyz")
    (work / "hello.yaml").write_text(blocks("yaml")[0])
    ran = 0
    for block in blocks("sh"):
        if "start-all &" in block:
            continue   # the API tour: test_api_tour_runs
        for cmd in commands(block):
            if cmd in ("bash build_zipapp.sh", "python3 -m pytest -q"):
                continue   # the build made `zipapp`; the test command is what is running now
            if "RUN_ID" in cmd:
                status = subprocess.run(["python3", "dagu.pyz", "status", "--json", "hello.yaml"],
                                        cwd=work, env=run_env, capture_output=True, text=True,
                                        timeout=60)
                cmd = cmd.replace("RUN_ID", json.loads(status.stdout)["dagRunId"])
            proc = subprocess.run(cmd, shell=True, cwd=work, env=run_env, capture_output=True,
                                  text=True, timeout=120)
            assert proc.returncode == 0, f"{cmd!r} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            assert "Traceback" not in proc.stderr
            ran += 1
    assert ran >= 8
    status = subprocess.run(["python3", "dagu.pyz", "status", "--json", "hello.yaml"], cwd=work,
                            env=run_env, capture_output=True, text=True, timeout=60)
    record = json.loads(status.stdout)
    assert record["statusLabel"] == "finished"
    outputs = {k: v for n in record["nodes"] for k, v in n["outputVariables"].items()}
    assert outputs["GREETING"] == "GREETING=hello, dagu"


def test_api_tour_runs(zipapp, run_env, tmp_path):
    """The curl tour, as one shell session (only the port differs: a free one, not 8080)."""
    tour = next(b for b in blocks("sh") if "start-all &" in b)
    port = free_port()
    # the background server must not outlive a failing line
    script = "set -euo pipefail\ntrap 'kill %1 2>/dev/null || true' EXIT\n" + tour.replace("8080", str(port))
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(zipapp, work / "dagu.pyz")
    env = dict(run_env, DAGU_PORT=str(port))
    env.pop("DAGU_HOME", None)   # the tour sets its own
    proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, f"tour failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    lines = proc.stdout
    assert '"status":"healthy"' in lines
    assert "dagu_dag_runs_total" in lines
    # what the tour claims happened
    env["DAGU_HOME"] = str(work / "tour")
    history = json.loads(subprocess.run(["python3", "dagu.pyz", "history", "--json", "deploy"],
                                        cwd=work, env=env, capture_output=True, text=True,
                                        timeout=60).stdout)
    by_id = {r["dagRunId"]: r for r in history}
    assert by_id["deploy-001"]["statusLabel"] == "finished"
    assert "env=production" in by_id["deploy-001"]["paramsList"]
    assert by_id["deploy-002"]["statusLabel"] == "finished"
    assert by_id["deploy-003"]["statusLabel"] == "finished"
    assert by_id["deploy-003"]["attempt"] == 2

"""Every command in README.md works as written, against the built dagu.pyz."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def commands() -> list[str]:
    out = []
    for block in blocks("sh"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line:
                out.append(line)
    return out


def test_readme_has_the_two_commands():
    cmds = commands()
    assert "bash build_zipapp.sh" in cmds
    assert "python3 -m pytest -q" in cmds


def test_every_readme_command_runs(zipapp, run_env, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(zipapp, work / "dagu.pyz")
    (work / "hello.yaml").write_text(blocks("yaml")[0])
    ran = 0
    for cmd in commands():
        if cmd in ("bash build_zipapp.sh", "python3 -m pytest -q"):
            continue   # the build made `zipapp`; the test command is what is running now
        if "RUN_ID" in cmd:
            status = subprocess.run(["python3", "dagu.pyz", "status", "--json", "hello.yaml"],
                                    cwd=work, env=run_env, capture_output=True, text=True, timeout=60)
            cmd = cmd.replace("RUN_ID", json.loads(status.stdout)["dagRunId"])
        proc = subprocess.run(cmd, shell=True, cwd=work, env=run_env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, f"{cmd!r} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr
        ran += 1
        if cmd.endswith("start hello.yaml -- dagu"):
            assert "Run finished" in proc.stderr
    assert ran >= 8
    status = subprocess.run(["python3", "dagu.pyz", "status", "--json", "hello.yaml"], cwd=work,
                            env=run_env, capture_output=True, text=True, timeout=60)
    record = json.loads(status.stdout)
    assert record["statusLabel"] == "finished"
    outputs = {k: v for n in record["nodes"] for k, v in n["outputVariables"].items()}
    assert outputs["GREETING"] == "GREETING=hello, dagu"

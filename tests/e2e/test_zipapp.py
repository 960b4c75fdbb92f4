"""End-to-end: the built dagu.pyz runs on a bare Python with its own vendored PyYAML."""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

GOOD_DAG = """\
params: "p0 KEY=default"
steps:
  - name: first
    command: echo one
  - name: second
    command: echo two
    depends: first
  - name: third
    command: echo three
    depends: [second]
"""

BAD_DAG = """\
name: bad
description: an unknown key on line 3 and a step without a command
foo: 1
steps:
  - name: nothing
"""


def run(python: Path | str, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)


def source_version() -> str:
    text = (ROOT / "dagu" / "__init__.py").read_text()
    return re.search(r'__version__\s*=\s*["\']([^"\']+)["\']', text).group(1)


def test_version_prints_package_version(zipapp, run_env, tmp_path):
    proc = run(sys.executable, ["-I", str(zipapp), "version"], run_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == source_version()


def test_bare_venv_cannot_import_yaml(bare_python, run_env, tmp_path):
    proc = run(bare_python, ["-I", "-c", "import yaml"], run_env, tmp_path)
    assert proc.returncode != 0
    assert "ModuleNotFoundError" in proc.stderr


def test_validate_good_dag_without_host_pyyaml(zipapp, bare_python, run_env, tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD_DAG)
    proc = run(bare_python, ["-I", str(zipapp), "validate", "good.yaml"], run_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "good.yaml" in proc.stdout


def test_validate_bad_dag_lists_every_problem_with_lines(zipapp, bare_python, run_env, tmp_path):
    (tmp_path / "bad.yaml").write_text(BAD_DAG)
    proc = run(bare_python, ["-I", str(zipapp), "validate", "bad.yaml"], run_env, tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert re.search(r":3\b|line 3", proc.stderr), proc.stderr
    assert "has invalid keys: foo" in proc.stderr
    assert "step command is required" in proc.stderr


def test_dry_shows_params_and_step_order(zipapp, bare_python, run_env, tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD_DAG)
    proc = run(bare_python, ["-I", str(zipapp), "dry", "good.yaml", "--", "p1", "KEY=v"],
               run_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "1=p1" in out and "KEY=v" in out
    assert "KEY=default" not in out and "1=p0" not in out
    positions = [out.find(name) for name in ("first", "second", "third")]
    assert -1 not in positions and positions == sorted(positions), out


def test_runs_isolated_without_site_packages(zipapp, run_env, tmp_path):
    """`-I -S` (how the launcher starts runners) must work: the vendored yaml is the only one."""
    (tmp_path / "good.yaml").write_text(GOOD_DAG)
    proc = run(sys.executable, ["-I", "-S", str(zipapp), "validate", "good.yaml"], run_env, tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_archive_has_no_native_code_or_pycache(zipapp):
    with zipfile.ZipFile(zipapp) as zf:
        names = zf.namelist()
    assert "__main__.py" in names
    assert "yaml/__init__.py" in names and "dagu/cli.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd", ".dylib"))]
    assert not [n for n in names if "__pycache__" in n.split("/")]
    assert not [n for n in names if n.startswith(("tests/", "dagu/tests/"))]
    assert names == sorted(names)


def test_exit_status_propagates_from_main(zipapp, run_env, tmp_path):
    proc = run(sys.executable, ["-I", "-S", str(zipapp), "validate", "missing.yaml"], run_env, tmp_path)
    assert proc.returncode == 1
    assert "missing.yaml" in proc.stderr

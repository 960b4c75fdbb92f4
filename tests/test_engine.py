"""The run engine seen from the CLI: real DAG files run with `dagu start`, then inspected with
`dagu status --json` / `history --json` (and the run store for child runs), the way a user would.

Every step is a real shell process; sub-DAG steps start real child runner processes of this
checkout. Timing checks use timestamps the steps themselves write, with loose bounds.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dagu.cli import main
from dagu.config import load_config
from dagu.store import RunStore

NOT_STARTED, RUNNING, FAILED, CANCELLED, SUCCESS, SKIPPED = 0, 1, 2, 3, 4, 5
RUN_FAILED, RUN_CANCELLED, RUN_SUCCESS, RUN_PARTIAL = 2, 3, 4, 6
NODE_LABELS = {0: "not started", 1: "running", 2: "failed", 3: "canceled", 4: "finished",
               5: "skipped"}
RUN_LABELS = {2: "failed", 3: "cancelled", 4: "finished", 6: "partial success"}
STAMP = 'date +%s.%N'   # GNU date: seconds with nanoseconds


class Run:
    """The outcome of one `dagu start`: exit code and the run record from `status --json`."""

    def __init__(self, rc: int, record: dict, path: Path, stderr: str):
        self.rc = rc
        self.record = record
        self.path = path
        self.dir = path.parent
        self.stderr = stderr

    @property
    def status(self) -> int:
        return self.record["status"]

    @property
    def run_id(self) -> str:
        return self.record["dagRunId"]

    def node(self, name: str) -> dict:
        for n in self.record["nodes"]:
            if n["step"]["name"] == name:
                return n
        raise KeyError(name)

    def out(self, name: str) -> str:
        """The text of a step's stdout log file."""
        return Path(self.node(name)["stdout"]).read_text()

    def output(self, name: str, var: str) -> str:
        """An output variable's value (stored as NAME=value)."""
        raw = self.node(name)["outputVariables"][var]
        assert raw.startswith(var + "=")
        return raw[len(var) + 1:]

    def file(self, name: str) -> str:
        return (self.dir / name).read_text()

    def stamps(self, name: str) -> list[float]:
        return [float(x) for x in self.file(name).split()]


class Dagu:
    """Writes DAG files into a directory of their own and drives the CLI in-process."""

    def __init__(self, root: Path, capsys):
        self.root = root
        self.capsys = capsys
        self.count = 0

    @property
    def config(self):
        return load_config(os.environ)

    def write(self, text: str, name: str = "dag", where: Path | None = None) -> Path:
        """A DAG file `<name>.yaml` in a fresh directory (or in `where`)."""
        if where is None:
            self.count += 1
            where = self.root / f"case{self.count}"
        where.mkdir(parents=True, exist_ok=True)
        path = where / f"{name}.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    def cli(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main(list(argv))
        cap = self.capsys.readouterr()
        return rc, cap.out, cap.err

    def status(self, path: Path, run_id: str | None = None) -> dict:
        argv = ["status", "--json", str(path)] + (["--run-id", run_id] if run_id else [])
        rc, out, err = self.cli(*argv)
        assert rc == 0, err
        return json.loads(out)

    def history(self, path: Path) -> list[dict]:
        rc, out, err = self.cli("history", "--json", str(path))
        assert rc == 0, err
        return json.loads(out)

    def start(self, dag: str | Path, *params: str, name: str = "dag", extra=()) -> Run:
        path = dag if isinstance(dag, Path) else self.write(dag, name)
        argv = ["start", *extra, str(path)] + (["--", *params] if params else [])
        rc, _out, err = self.cli(*argv)
        return Run(rc, self.status(path), path, err)

    def retry(self, run: Run, step: str | None = None) -> Run:
        argv = ["retry", "--run-id", run.run_id] + (["--step", step] if step else [])
        argv.append(str(run.path))
        rc, _out, err = self.cli(*argv)
        return Run(rc, self.status(run.path, run.run_id), run.path, err)


@pytest.fixture
def dagu(tmp_path, monkeypatch, capsys) -> Dagu:
    home = tmp_path / "home"
    dagu_home = tmp_path / "dagu-home"
    home.mkdir()
    dagu_home.mkdir()
    for key in list(os.environ):
        if key.startswith("DAGU_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DAGU_HOME", str(dagu_home))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DISABLE_DAG_RUN_QUEUE", "1")
    monkeypatch.setenv("SHELL", "/bin/sh")
    return Dagu(tmp_path / "dags", capsys)


def expect_nodes(run: Run, expected: dict[str, int]) -> None:
    got = {name: run.node(name)["status"] for name in expected}
    assert got == expected, json.dumps(run.record["nodes"], indent=1)[:4000]
    for name, code in expected.items():
        assert run.node(name)["statusLabel"] == NODE_LABELS[code]


def expect_run(run: Run, status: int, rc: int | None = None) -> None:
    assert run.status == status, (run.record.get("error"), run.stderr[-3000:])
    assert run.record["statusLabel"] == RUN_LABELS[status]
    if rc is None:
        rc = 0 if status == RUN_SUCCESS else 1
    assert run.rc == rc


# ================================================================================================
# Ordering: chain vs graph, depends by name and id
# ================================================================================================

def _timed(name: str, extra: str = "", sleep: str = "0.2") -> str:
    return (f"  - name: {name}\n{extra}"
            f"    command: {STAMP} >> {name}.t; sleep {sleep}; {STAMP} >> {name}.t; "
            f"echo {name} >> order.txt\n")


@pytest.mark.parametrize("header, steps, sequential, parallel", [
    pytest.param("", _timed("a") + _timed("b") + _timed("c"),
                 [("a", "b"), ("b", "c")], [], id="default-type-is-chain"),
    pytest.param("type: chain\n", _timed("a") + _timed("b", "    depends: []\n") + _timed("c"),
                 [("b", "c")], [("a", "b")], id="chain-empty-depends-starts-a-root"),
    pytest.param("type: graph\n", _timed("a") + _timed("b") + _timed("c"),
                 [], [("a", "b"), ("b", "c"), ("a", "c")], id="graph-roots-run-in-parallel"),
    pytest.param("type: graph\n",
                 _timed("a", "    id: first\n") + _timed("b", "    depends: first\n")
                 + _timed("c", "    depends: [first]\n"),
                 [("a", "b"), ("a", "c")], [("b", "c")], id="graph-depends-by-step-id"),
    pytest.param("type: graph\n",
                 _timed("a") + _timed("b", "    depends: a\n")
                 + _timed("c", "    depends: [a, b]\n"),
                 [("a", "b"), ("b", "c")], [], id="graph-depends-by-name"),
])
def test_step_ordering(dagu, header, steps, sequential, parallel):
    run = dagu.start(header + "steps:\n" + steps)
    expect_run(run, RUN_SUCCESS)
    span = {n: run.stamps(f"{n}.t") for n in ("a", "b", "c")}
    for first, then in sequential:
        assert span[then][0] >= span[first][1], f"{then} started before {first} finished"
    for x, y in parallel:
        assert span[y][0] < span[x][1] and span[x][0] < span[y][1], f"{x} and {y} did not overlap"
    assert sorted(run.file("order.txt").split()) == ["a", "b", "c"]


def test_chain_appends_in_file_order(dagu):
    steps = "".join(f"  - name: s{i}\n    command: echo s{i} >> order.txt\n" for i in range(6))
    run = dagu.start("steps:\n" + steps)
    expect_run(run, RUN_SUCCESS)
    assert run.file("order.txt").split() == [f"s{i}" for i in range(6)]


# ================================================================================================
# Failure propagation
# ================================================================================================

@pytest.mark.parametrize("dag, expected", [
    pytest.param("""
        type: graph
        steps:
          - name: bad
            command: exit 3
          - name: after_bad
            command: echo never > never.txt
            depends: bad
          - name: after_after
            command: echo never >> never.txt
            depends: after_bad
          - name: other
            command: sleep 0.3; echo ok > other.txt
          - name: after_other
            command: echo ok >> other.txt
            depends: other
        """, {"bad": FAILED, "after_bad": CANCELLED, "after_after": CANCELLED, "other": SUCCESS,
              "after_other": SUCCESS}, id="graph-independent-branch-completes"),
    pytest.param("""
        steps:
          - name: one
            command: echo ok > other.txt; echo ok >> other.txt
          - name: bad
            command: exit 1
          - name: after_bad
            command: echo never > never.txt
        """, {"one": SUCCESS, "bad": FAILED, "after_bad": CANCELLED},
        id="chain-stops-after-failure"),
])
def test_failed_step_cancels_downstream(dagu, dag, expected):
    run = dagu.start(dag)
    expect_run(run, RUN_FAILED)
    expect_nodes(run, expected)
    direct = [n for n in expected if run.node(n)["step"]["depends"] == ["bad"]]
    assert direct and all(run.node(n)["error"] == "upstream failed" for n in direct)
    for name, code in expected.items():
        if code == CANCELLED:
            assert run.node(name)["startedAt"] in ("", None)
    assert not (run.dir / "never.txt").exists()
    assert run.file("other.txt").split() == ["ok", "ok"]
    bad = run.node("bad")
    assert bad["exitCode"] in (1, 3) and "exit status" in bad["error"]
    assert run.record["error"]


# ================================================================================================
# continueOn
# ================================================================================================

def _continue_dag(bad_command: str, continue_on: str, precondition: str = "") -> str:
    return textwrap.dedent("""
        steps:
          - name: bad
            command: {cmd}
        {pre}    continueOn:
        {cont}
          - name: next
            command: echo ran > next.txt
        """).format(cmd=bad_command, pre=precondition,
                    cont=textwrap.indent(textwrap.dedent(continue_on), "      "))


@pytest.mark.parametrize("cmd, continue_on, bad, nxt, run_status", [
    pytest.param("exit 1", "failure: true", FAILED, SUCCESS, RUN_PARTIAL, id="failure-true"),
    pytest.param("exit 3", "exitCode: [2, 3]", FAILED, SUCCESS, RUN_PARTIAL, id="exitcode-in-list"),
    pytest.param("exit 3", "exitCode: 3", FAILED, SUCCESS, RUN_PARTIAL, id="exitcode-scalar"),
    pytest.param("exit 4", "exitCode: [2, 3]", FAILED, CANCELLED, RUN_FAILED,
                 id="exitcode-not-in-list"),
    pytest.param("echo 'some WARNING here'; exit 1", "output: WARNING", FAILED, SUCCESS,
                 RUN_PARTIAL, id="output-literal-substring"),
    pytest.param("echo first; echo E042 broke; exit 1", 'output: ["nope", "re:^E[0-9]+ "]',
                 FAILED, SUCCESS, RUN_PARTIAL, id="output-regex-any-line"),
    pytest.param("echo fine; exit 1", "output: [nope, 're:^x']", FAILED, CANCELLED, RUN_FAILED,
                 id="output-no-match"),
    pytest.param("echo 'WARNING' >&2; exit 1", "output: WARNING", FAILED, CANCELLED, RUN_FAILED,
                 id="output-ignores-stderr"),
    pytest.param("exit 1", "failure: true\nmarkSuccess: true", SUCCESS, SUCCESS, RUN_SUCCESS,
                 id="mark-success"),
    pytest.param("exit 5", "exitCode: [5]\nmarkSuccess: true", SUCCESS, SUCCESS, RUN_SUCCESS,
                 id="mark-success-with-exitcode"),
    pytest.param("exit 6", "exitCode: [5]\nmarkSuccess: true", FAILED, CANCELLED, RUN_FAILED,
                 id="mark-success-needs-a-matching-rule"),
])
def test_continue_on_failure(dagu, cmd, continue_on, bad, nxt, run_status):
    run = dagu.start(_continue_dag(json.dumps(cmd), continue_on))
    expect_run(run, run_status)
    expect_nodes(run, {"bad": bad, "next": nxt})
    assert (run.dir / "next.txt").exists() == (nxt == SUCCESS)
    if bad == SUCCESS:
        assert run.node("bad")["error"] == ""


@pytest.mark.parametrize("continue_on, nxt, run_status, next_error", [
    pytest.param("skipped: true", SUCCESS, RUN_SUCCESS, "", id="continue-after-skip"),
    pytest.param("failure: true", SKIPPED, RUN_SUCCESS, "upstream skipped", id="skip-propagates"),
])
def test_continue_on_skipped(dagu, continue_on, nxt, run_status, next_error):
    run = dagu.start(_continue_dag("echo never > bad.txt", continue_on,
                                   precondition="    preconditions:\n      - condition: 'false'\n"))
    expect_run(run, run_status)
    expect_nodes(run, {"bad": SKIPPED, "next": nxt})
    assert not (run.dir / "bad.txt").exists()
    assert run.node("next")["error"] == next_error


def test_partial_success_shape(dagu):
    run = dagu.start("""
        type: graph
        steps:
          - name: flaky
            command: exit 1
            continueOn: {failure: true}
          - name: fine
            command: "true"
        """)
    expect_run(run, RUN_PARTIAL)
    assert run.record["statusLabel"] == "partial success"
    expect_nodes(run, {"flaky": FAILED, "fine": SUCCESS})
    hist = dagu.history(run.path)
    assert [(h["dagRunId"], h["status"], h["statusLabel"]) for h in hist] == [
        (run.run_id, 6, "partial success")]


def test_failed_step_not_allowed_to_continue_beats_partial_success(dagu):
    run = dagu.start("""
        type: graph
        steps:
          - name: allowed
            command: exit 1
            continueOn: {failure: true}
          - name: fine
            command: "true"
          - name: fatal
            command: exit 2
        """)
    expect_run(run, RUN_FAILED)
    expect_nodes(run, {"allowed": FAILED, "fine": SUCCESS, "fatal": FAILED})


# ================================================================================================
# Preconditions
# ================================================================================================

HANDLERS = """
handlerOn:
  success:
    command: echo success >> handlers.txt
  failure:
    command: echo failure >> handlers.txt
  cancel:
    command: echo cancel >> handlers.txt
  exit:
    command: echo exit >> handlers.txt
"""


@pytest.mark.parametrize("precondition", [
    pytest.param("preconditions:\n  - condition: '`echo no`'\n    expected: 'yes'\n",
                 id="expected-value"),
    pytest.param("preconditions:\n  - condition: '$MODE'\n    expected: 're:^prod'\n",
                 id="expected-regex"),
    pytest.param("precondition: test -f missing.flag\n", id="command-condition"),
    pytest.param("preconditions:\n  - command: test -f missing.flag\n", id="command-key"),
])
def test_dag_precondition_not_met_cancels_run(dagu, monkeypatch, precondition):
    monkeypatch.setenv("MODE", "staging")
    run = dagu.start(precondition + HANDLERS + """
steps:
  - name: s1
    command: echo ran > s1.txt
  - name: s2
    command: echo ran > s2.txt
""")
    assert run.status == RUN_CANCELLED
    assert run.record["statusLabel"] == "cancelled"
    expect_nodes(run, {"s1": NOT_STARTED, "s2": NOT_STARTED})
    assert not (run.dir / "s1.txt").exists()
    assert run.file("handlers.txt").split() == ["cancel", "exit"]
    assert run.record["onCancel"]["status"] == SUCCESS
    assert run.record["onExit"]["status"] == SUCCESS
    assert run.record["onSuccess"]["status"] == NOT_STARTED
    assert run.record["onFailure"]["status"] == NOT_STARTED
    conditions = run.record["preconditions"]
    assert conditions and conditions[0]["error"].startswith("condition was not met")


def test_dag_precondition_not_met_exits_zero(dagu):
    run = dagu.start("precondition: 'false'\nsteps:\n  - name: s1\n    command: 'true'\n")
    assert run.status == RUN_CANCELLED
    assert run.rc == 0


@pytest.mark.parametrize("precondition, met", [
    pytest.param("- condition: '`echo yes`'\n  expected: 'yes'", True, id="expected-met"),
    pytest.param("- condition: '`echo no`'\n  expected: 'yes'", False, id="expected-not-met"),
    pytest.param("- condition: '`printf \"a\\\\nrelease-42\\\\nb\"`'\n"
                 "  expected: 're:^release-[0-9]+$'", True, id="regex-matches-any-line"),
    pytest.param("- condition: '$MODE'\n  expected: 're:^prod'", False, id="regex-env-not-met"),
    pytest.param("- condition: '${1}'\n  expected: 'go'", True, id="positional-param"),
    pytest.param("- condition: 'test -f present.flag'", True, id="command-exit-0"),
    pytest.param("- condition: 'test -f missing.flag'", False, id="command-exit-1"),
    pytest.param("- condition: 'test -f present.flag'\n- condition: 'false'", False,
                 id="all-conditions-must-hold"),
])
def test_step_precondition(dagu, monkeypatch, precondition, met):
    monkeypatch.setenv("MODE", "staging")
    path = dagu.write("""
params: go
steps:
  - name: guarded
    command: echo ran > guarded.txt
    preconditions:
%s
  - name: after
    command: echo ran > after.txt
""" % textwrap.indent(precondition, "      "))
    (path.parent / "present.flag").write_text("")
    run = dagu.start(path)
    if met:
        expect_run(run, RUN_SUCCESS)
        expect_nodes(run, {"guarded": SUCCESS, "after": SUCCESS})
    else:
        expect_run(run, RUN_SUCCESS)
        expect_nodes(run, {"guarded": SKIPPED, "after": SKIPPED})
        assert run.node("after")["error"] == "upstream skipped"
    assert (run.dir / "guarded.txt").exists() == met


def test_step_precondition_evaluation_error_skips_step(dagu):
    run = dagu.start("""
        steps:
          - name: guarded
            command: echo ran > guarded.txt
            preconditions:
              - condition: '`exit 3`'
                expected: 'yes'
          - name: after
            command: echo ran > after.txt
            continueOn: {skipped: true}
        """)
    assert run.node("guarded")["status"] == SKIPPED, run.node("guarded")["error"]
    assert run.node("guarded")["error"]
    assert not (run.dir / "guarded.txt").exists()


def test_dag_precondition_evaluation_error_cancels_run(dagu):
    run = dagu.start("""
        preconditions:
          - condition: '`exit 3`'
            expected: 'yes'
        handlerOn:
          exit:
            command: echo exit > exit.txt
        steps:
          - name: s1
            command: echo ran > s1.txt
        """)
    assert run.status == RUN_CANCELLED, run.record["error"]
    expect_nodes(run, {"s1": NOT_STARTED})
    assert run.file("exit.txt").strip() == "exit"


def test_step_precondition_sees_ancestor_output(dagu):
    run = dagu.start("""
        steps:
          - name: probe
            command: echo ready
            output: STATE
          - name: go
            command: echo ran > go.txt
            preconditions:
              - condition: "${STATE}"
                expected: ready
          - name: stop
            command: echo ran > stop.txt
            depends: []
            preconditions:
              - condition: "${STATE}"
                expected: ready
        """)
    expect_run(run, RUN_SUCCESS)
    expect_nodes(run, {"probe": SUCCESS, "go": SUCCESS, "stop": SKIPPED})


# ================================================================================================
# retryPolicy
# ================================================================================================

COUNTER = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; ' \
          'echo "try $n"; {STAMP} >> stamps'.replace("{STAMP}", STAMP)


@pytest.mark.parametrize("policy, succeed_on, exit_code, status, tries", [
    pytest.param("limit: 3\n  intervalSec: 0", 3, 1, SUCCESS, 3, id="succeeds-on-third-try"),
    pytest.param("limit: 1\n  intervalSec: 0", 3, 1, FAILED, 2, id="gives-up-after-limit"),
    pytest.param("limit: 3\n  intervalSec: 0\n  exitCode: [42]", 3, 42, SUCCESS, 3,
                 id="exit-code-in-list-retries"),
    pytest.param("limit: 3\n  intervalSec: 0\n  exitCode: [42]", 3, 1, FAILED, 1,
                 id="exit-code-not-in-list-no-retry"),
    pytest.param("limit: '`echo 2`'\n  intervalSec: '0'", 3, 1, SUCCESS, 3,
                 id="limit-from-command-substitution"),
    pytest.param("limit: 0\n  intervalSec: 0", 3, 1, FAILED, 1, id="limit-zero-no-retry"),
])
def test_retry_policy(dagu, policy, succeed_on, exit_code, status, tries):
    run = dagu.start(f"""
steps:
  - name: flaky
    command: '{COUNTER}; [ $n -ge {succeed_on} ] || exit {exit_code}'
    retryPolicy:
      {textwrap.indent(policy, "    ").lstrip()}
""")
    node = run.node("flaky")
    assert node["status"] == status, node
    assert run.file("count").strip() == str(tries)
    assert node["retryCount"] == tries - 1
    expect_run(run, RUN_SUCCESS if status == SUCCESS else RUN_FAILED)
    if tries > 1:
        assert node["retriedAt"]
    if status == FAILED:
        assert node["exitCode"] == exit_code


def test_retry_interval_capped_by_max_interval(dagu):
    run = dagu.start(f"""
steps:
  - name: flaky
    command: '{COUNTER}; [ $n -ge 3 ] || exit 1'
    retryPolicy:
      limit: 2
      intervalSec: 1
      backoff: 3
      maxIntervalSec: 1
""")
    expect_run(run, RUN_SUCCESS)
    stamps = run.stamps("stamps")
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(gaps) == 2
    assert all(0.9 <= g < 2.5 for g in gaps), gaps


@pytest.mark.slow
def test_retry_backoff_grows(dagu):
    run = dagu.start(f"""
steps:
  - name: flaky
    command: '{COUNTER}; [ $n -ge 3 ] || exit 1'
    retryPolicy:
      limit: 2
      intervalSec: 1
      backoff: 2
""")
    expect_run(run, RUN_SUCCESS)
    stamps = run.stamps("stamps")
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert 0.9 <= gaps[0] < 1.8 and 1.9 <= gaps[1] < 3.5, gaps


def test_retry_keeps_last_output(dagu):
    run = dagu.start(f"""
steps:
  - name: flaky
    command: '{COUNTER}; [ $n -ge 2 ] || exit 1'
    output: RESULT
    retryPolicy: {{limit: 2, intervalSec: 0}}
  - name: use
    command: echo "got ${{RESULT}}"
""")
    expect_run(run, RUN_SUCCESS)
    assert run.output("flaky", "RESULT") == "try 2"
    assert run.out("use").strip() == "got try 2"


# ================================================================================================
# repeatPolicy
# ================================================================================================

@pytest.mark.parametrize("command, policy, done, status, run_count", [
    pytest.param(COUNTER, "repeat: true\n  limit: 3\n  intervalSec: 0", 3, SUCCESS, 3,
                 id="repeat-true-limit"),
    pytest.param(COUNTER + "; [ $n -lt 2 ]", "repeat: true\n  limit: 5\n  intervalSec: 0",
                 2, FAILED, 2, id="failing-execution-stops-repeat-true"),
    pytest.param(COUNTER, "repeat: until\n  condition: '${LAST}'\n  expected: 'try 3'\n"
                          "  intervalSec: 0", 3, SUCCESS, 3, id="until-own-output-expected"),
    pytest.param(COUNTER, "repeat: while\n  condition: 'test $(cat count) -lt 4'\n"
                          "  intervalSec: 0", 4, SUCCESS, 4, id="while-command-condition"),
    pytest.param(COUNTER, "condition: '${LAST}'\n  expected: 're:2$'\n  intervalSec: 0",
                 2, SUCCESS, 2, id="condition-expected-repeats-until-match"),
    pytest.param(COUNTER + "; [ $n -ge 3 ] || exit 7",
                 "exitCode: [7]\n  intervalSec: 0", 3, SUCCESS, 3, id="repeat-while-exit-code"),
    pytest.param(COUNTER + "; [ $n -ge 3 ] || exit 7",
                 "repeat: until\n  exitCode: [0]\n  intervalSec: 0", 3, SUCCESS, 3,
                 id="until-exit-code"),
    pytest.param(COUNTER + "; exit 7", "exitCode: [7]\n  limit: 2\n  intervalSec: 0",
                 2, FAILED, 2, id="exit-code-repeat-capped-by-limit"),
])
def test_repeat_policy(dagu, command, policy, done, status, run_count):
    run = dagu.start(f"""
steps:
  - name: loop
    command: '{command}'
    output: LAST
    repeatPolicy:
      {textwrap.indent(policy, "    ").lstrip()}
""")
    node = run.node("loop")
    assert run.file("count").strip() == str(run_count)
    assert (node["status"], node["doneCount"]) == (status, done), node
    assert run.status == (RUN_SUCCESS if status == SUCCESS else RUN_FAILED)
    assert run.output("loop", "LAST") == f"try {run_count}"


def test_repeat_interval(dagu):
    run = dagu.start(f"""
steps:
  - name: loop
    command: '{COUNTER}'
    repeatPolicy: {{repeat: true, limit: 2, intervalSec: 1}}
""")
    expect_run(run, RUN_SUCCESS)
    stamps = run.stamps("stamps")
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(gaps) == 1 and all(0.9 <= g < 3 for g in gaps), gaps


# ================================================================================================
# Outputs
# ================================================================================================

def test_output_visible_to_descendants_and_handlers_only(dagu):
    run = dagu.start("""
        type: graph
        steps:
          - name: produce
            command: echo "  the value  "
            output: X
          - name: child
            command: echo "cmd=${X} env=$X"
            depends: produce
          - name: grandchild
            command: printf '%s' "${X}"
            depends: child
          - name: unrelated
            command: sleep 0.3; echo "[${X}]"
          - name: failing
            command: echo "failed but said"; exit 1
            output: F
            depends: grandchild
        handlerOn:
          failure:
            command: echo "handler=${X} ${F}"
        """)
    expect_run(run, RUN_FAILED)
    assert run.output("produce", "X") == "the value"
    assert run.out("child").strip() == "cmd=the value env=the value"
    assert run.out("grandchild") == "the value"
    assert run.out("unrelated").strip() in ("[]", "[${X}]")
    assert Path(run.record["onFailure"]["stdout"]).read_text().strip() == \
        "handler=the value failed but said"


@pytest.mark.parametrize("produced, reference, expected", [
    pytest.param('{"a": {"b": "deep"}, "n": 8080}', "${X.a.b}", "deep", id="nested-key"),
    pytest.param('{"a": {"b": "deep"}, "n": 8080}', "${X.n}", "8080", id="number"),
    pytest.param('{"items": ["p", "q"]}', "${X.items[1]}", "q", id="array-index"),
    pytest.param('{"a": {"b": "deep"}}', "${X}", '{a: {b: deep}}', id="whole-value"),
])
def test_output_json_path(dagu, produced, reference, expected):
    run = dagu.start(f"""
steps:
  - name: produce
    command: {json.dumps("echo '" + produced + "'")}
    output: X
  - name: use
    command: {json.dumps('echo "' + reference + '"')}
""")
    expect_run(run, RUN_SUCCESS)
    assert run.out("use").strip() in expected.split("|")


@pytest.mark.parametrize("command, expected", [
    pytest.param("echo out; echo err >&2", "out", id="stdout-only"),
    pytest.param("printf '\\n\\n  a b  \\n\\n'", "a b", id="trimmed"),
    pytest.param("echo line1; echo line2", "line1\nline2", id="multi-line"),
    pytest.param("echo partial; exit 1", "partial", id="captured-when-failing"),
])
def test_output_capture(dagu, command, expected):
    run = dagu.start(f"""
steps:
  - name: produce
    command: {json.dumps(command)}
    output: $X
    continueOn: {{failure: true}}
  - name: use
    command: printf '%s' "${{X}}"
""")
    assert run.output("produce", "X") == expected
    assert run.out("use") == expected


def test_output_over_one_mib_fails_step(dagu):
    run = dagu.start("""
        steps:
          - name: big
            command: head -c 1100000 /dev/zero | tr '\\0' a
            output: BIG
          - name: after
            command: "true"
        """)
    expect_run(run, RUN_FAILED)
    expect_nodes(run, {"big": FAILED, "after": CANCELLED})
    assert "output exceeded maximum size limit" in run.node("big")["error"]
    assert "BIG" not in run.node("big")["outputVariables"]


def test_output_just_under_one_mib_is_fine(dagu):
    run = dagu.start("""
        steps:
          - name: big
            command: head -c 1000000 /dev/zero | tr '\\0' a
            output: BIG
        """)
    expect_run(run, RUN_SUCCESS)
    assert run.output("big", "BIG") == "a" * 1000000


def test_step_id_properties(dagu):
    run = dagu.start("""
        steps:
          - name: first step
            id: first
            command: echo hello; exit 3
            continueOn: {exitCode: [3]}
          - name: second
            command: echo "code=${first.exit_code}"; cat "${first.stdout}"; echo "${first.stderr}"
        """)
    expect_run(run, RUN_PARTIAL)
    lines = run.out("second").splitlines()
    assert lines[0] == "code=3"
    assert lines[1] == "hello"
    assert lines[2] == run.node("first step")["stderr"]


# ================================================================================================
# Special variables
# ================================================================================================

def test_special_variables(dagu):
    run = dagu.start("""
        name: special-vars
        steps:
          - name: show
            command: >-
              echo "$DAG_NAME|$DAG_RUN_ID|$DAG_RUN_STEP_NAME|$DAG_RUN_LOG_FILE|$DAG_RUN_STEP_STDOUT_FILE|$DAG_RUN_STEP_STDERR_FILE"
          - name: substituted
            command: echo "${DAG_NAME}|${DAG_RUN_ID}|${DAG_RUN_STEP_NAME}"
          - name: script
            script: |
              echo "$DAG_NAME|$DAG_RUN_STEP_NAME"
        """)
    expect_run(run, RUN_SUCCESS)
    rec = run.record
    show = run.node("show")
    assert run.out("show").strip().split("|") == [
        "special-vars", rec["dagRunId"], "show", rec["log"], show["stdout"], show["stderr"]]
    assert run.out("substituted").strip() == f"special-vars|{rec['dagRunId']}|substituted"
    assert run.out("script").strip() == "special-vars|script"
    assert Path(rec["log"]).is_file()
    assert "Run finished" in Path(rec["log"]).read_text()


# ================================================================================================
# env, dotenv, params
# ================================================================================================

def test_env_dotenv_and_backticks(dagu, monkeypatch):
    monkeypatch.setenv("OUTER", "from-process")
    path = dagu.write("""
        dotenv: [.env, missing.env]
        env:
          - BASE: /opt/app
          - DATA: ${BASE}/data
          - TODAY: "`echo computed`"
          - FROM_OUTER: "x-${OUTER}"
          - OVERRIDE: dag
        steps:
          - name: show
            command: echo "$BASE|$DATA|$TODAY|$FROM_OUTER|$DOT|$QUOTED|$OVERRIDE"
          - name: step-env
            env:
              - OVERRIDE: step
              - LOCAL: "${DATA}/local"
            command: echo "$OVERRIDE|$LOCAL"
        """)
    (path.parent / ".env").write_text('DOT=dotvalue\nexport QUOTED="a b"\n# comment\n')
    run = dagu.start(path)
    expect_run(run, RUN_SUCCESS)
    assert run.out("show").strip() == \
        "/opt/app|/opt/app/data|computed|x-from-process|dotvalue|a b|dag"
    assert run.out("step-env").strip() == "step|/opt/app/data/local"


@pytest.mark.parametrize("params_yaml, args, extra, expected", [
    pytest.param('params: "a b"', [], (), "1=a 2=b N= M=", id="positional-defaults"),
    pytest.param('params: "a b"', ["x", "y"], (), "1=x 2=y N= M=", id="positional-overridden"),
    pytest.param('params: "N=one M=two"', [], (), "1= 2= N=one M=two", id="named-defaults"),
    pytest.param('params: "N=one M=two"', ["M=changed"], (), "1= 2= N=one M=changed",
                 id="named-override-after-dashes"),
    pytest.param('params:\n  - N: one\n  - M: "${N}-two"', [], (), "1= 2= N=one M=one-two",
                 id="list-form-sees-earlier-params"),
    pytest.param('params: "N=one M=two"', [], ("-p", 'M="from flag"'),
                 "1= 2= N=one M=from flag", id="dash-p-flag"),
    pytest.param('params: "N=`echo computed`"', [], (), "1= 2= N=computed M=",
                 id="backtick-in-param"),
])
def test_params(dagu, params_yaml, args, extra, expected):
    run = dagu.start(params_yaml + """
steps:
  - name: show
    command: echo "1=$1 2=$2 N=$N M=$M"
""", *args, extra=extra)
    expect_run(run, RUN_SUCCESS)
    assert run.out("show").strip() == expected


def test_params_recorded_in_run(dagu):
    run = dagu.start('params: "N=one M=two"\nsteps:\n  - name: s\n    command: "true"\n',
                     "M=changed")
    expect_run(run, RUN_SUCCESS)
    assert run.record["paramsList"] == ["N=one", "M=changed"]
    assert run.record["params"] == "N=one M=changed"


# ================================================================================================
# Commands: scripts, shells, working directory, extra output files
# ================================================================================================

@pytest.mark.parametrize("step, status, stdout", [
    pytest.param("script: |\n      #!/usr/bin/env python3\n      import sys\n"
                 "      print('py', sys.version_info[0])\n", SUCCESS, "py 3", id="shebang-python"),
    pytest.param("command: python3\n    script: |\n      print(6 * 7)\n", SUCCESS, "42",
                 id="script-with-command-interpreter"),
    pytest.param("script: |\n      echo one\n      echo two\n", SUCCESS, "one\ntwo",
                 id="script-default-shell"),
    pytest.param("script: |\n      echo before\n      exit 4\n", FAILED, "before",
                 id="script-exit-code"),
    pytest.param("shell: bash -o pipefail -c\n    command: false | cat; echo unreachable",
                 SUCCESS, "unreachable", id="pipefail-only-fails-the-pipeline-exit"),
    pytest.param("shell: bash -o pipefail -c\n    command: echo hi | false | cat", FAILED, "",
                 id="pipefail-failing-pipeline"),
    pytest.param("command: echo hi | false | cat", SUCCESS, "", id="no-pipefail-by-default"),
    pytest.param("shell: bash\n    command: echo ${BASH_VERSION:+bash}", SUCCESS, "bash",
                 id="shell-bash"),
    pytest.param('command: [echo, "a  b", "c"]', SUCCESS, "a  b c", id="command-list"),
    pytest.param("command: definitely-not-a-command-xyz", FAILED, "", id="missing-program"),
])
def test_commands(dagu, step, status, stdout):
    run = dagu.start(f"steps:\n  - name: s\n    {step}\n")
    node = run.node("s")
    assert node["status"] == status, node["error"]
    assert run.out("s").strip() == stdout
    expect_run(run, RUN_SUCCESS if status == SUCCESS else RUN_FAILED)
    if "exit 4" in step:
        assert node["exitCode"] == 4
    assert not [p for p in run.dir.iterdir() if p.name.startswith("dagu_script-")]


@pytest.mark.parametrize("key, value, expected", [
    pytest.param("dir", "sub", "sub", id="dir-relative-to-dag-file"),
    pytest.param("dir", "${WORK}", "work", id="dir-from-env"),
    pytest.param("workingDir", "sub", "sub", id="workingDir"),
    pytest.param(None, None, ".", id="default-is-dag-file-dir"),
])
def test_working_directory(dagu, monkeypatch, key, value, expected):
    # A relative `dir` is made absolute against the runner's cwd (Dagu: fileutil.ResolvePath),
    # so run from the DAG's directory.
    path = dagu.write(("env:\n  - WORK: %s\n" % "__DIR__/work") + "steps:\n  - name: s\n"
                      + (f"    {key}: {value}\n" if key else "") + "    command: pwd\n")
    path.write_text(path.read_text().replace("__DIR__", str(path.parent)))
    (path.parent / "sub").mkdir()
    (path.parent / "work").mkdir()
    monkeypatch.chdir(path.parent)
    run = dagu.start(path)
    expect_run(run, RUN_SUCCESS)
    assert Path(run.out("s").strip()).resolve() == (path.parent / expected).resolve()


def test_missing_working_directory_fails_step(dagu):
    run = dagu.start("steps:\n  - name: s\n    dir: /nonexistent/dir\n    command: pwd\n")
    expect_run(run, RUN_FAILED)
    assert "directory does not exist" in run.node("s")["error"]


def test_stdout_stderr_extra_files(dagu):
    run = dagu.start("""
        steps:
          - name: s
            command: echo to-out; echo to-err >&2
            stdout: out.log
            stderr: logs/err.log
            output: X
          - name: again
            command: echo second
            stdout: out.log
        """.replace("logs/err.log", "err.log"))
    expect_run(run, RUN_SUCCESS)
    assert run.file("out.log").splitlines() == ["to-out", "second"]
    assert run.file("err.log").strip() == "to-err"
    assert run.out("s").strip() == "to-out"
    assert Path(run.node("s")["stderr"]).read_text().strip() == "to-err"
    assert run.output("s", "X") == "to-out"


# ================================================================================================
# Handlers
# ================================================================================================

@pytest.mark.parametrize("steps, run_status, ran, statuses", [
    pytest.param("  - name: ok\n    command: 'true'\n", RUN_SUCCESS, ["success", "exit"],
                 {"onSuccess": SUCCESS, "onExit": SUCCESS, "onFailure": NOT_STARTED,
                  "onCancel": NOT_STARTED}, id="success"),
    pytest.param("  - name: bad\n    command: exit 1\n", RUN_FAILED, ["failure", "exit"],
                 {"onSuccess": NOT_STARTED, "onExit": SUCCESS, "onFailure": SUCCESS,
                  "onCancel": NOT_STARTED}, id="failure"),
    pytest.param("  - name: bad\n    command: exit 1\n    continueOn: {failure: true}\n"
                 "  - name: ok\n    command: 'true'\n", RUN_PARTIAL, ["success", "exit"],
                 {"onSuccess": SUCCESS, "onExit": SUCCESS, "onFailure": NOT_STARTED,
                  "onCancel": NOT_STARTED}, id="partial-success-runs-onSuccess"),
])
def test_handlers_run_once(dagu, steps, run_status, ran, statuses):
    run = dagu.start(HANDLERS.replace("handlers.txt", "handlers.txt; echo $DAG_RUN_STEP_NAME")
                     + "steps:\n" + steps)
    expect_run(run, run_status)
    assert run.file("handlers.txt").split() == ran
    for key, code in statuses.items():
        assert run.record[key]["status"] == code, key
        assert run.record[key]["statusLabel"] == NODE_LABELS[code]
        assert run.record[key]["step"]["name"] == key
        if code == SUCCESS:
            assert run.record[key]["doneCount"] == 1
            assert Path(run.record[key]["stdout"]).read_text().strip() == key


@pytest.mark.parametrize("steps, handler, run_status", [
    pytest.param("  - name: ok\n    command: 'true'\n", "exit", RUN_FAILED,
                 id="failing-onExit-fails-a-successful-run"),
    pytest.param("  - name: ok\n    command: 'true'\n", "success", RUN_FAILED,
                 id="failing-onSuccess-fails-a-successful-run"),
])
def test_failing_handler(dagu, steps, handler, run_status):
    run = dagu.start(f"handlerOn:\n  {handler}:\n    command: exit 9\nsteps:\n" + steps)
    expect_run(run, run_status)
    key = {"exit": "onExit", "success": "onSuccess"}[handler]
    assert run.record[key]["status"] == FAILED
    assert run.record[key]["statusLabel"] == "failed"
    assert run.record["error"]
    assert run.node("ok")["status"] == SUCCESS


def test_handler_sees_params_and_env(dagu):
    run = dagu.start("""
        params: P=1
        env:
          - E: e
        handlerOn:
          exit:
            command: echo "$P $E $DAG_NAME" > exit.txt
        steps:
          - name: s
            command: "true"
        """)
    expect_run(run, RUN_SUCCESS)
    assert run.file("exit.txt").strip() == "1 e dag"


# ================================================================================================
# timeoutSec, maxActiveSteps, delaySec
# ================================================================================================

def test_timeout_fails_run_and_cancels_steps(dagu):
    t0 = time.monotonic()
    run = dagu.start("""
        timeoutSec: 1
        type: graph
        handlerOn:
          failure:
            command: echo failure >> handlers.txt
          exit:
            command: echo exit >> handlers.txt
        steps:
          - name: quick
            command: "true"
          - name: slow
            command: sleep 30
          - name: after
            command: echo never > never.txt
            depends: slow
        """)
    elapsed = time.monotonic() - t0
    assert elapsed < 10
    expect_run(run, RUN_FAILED)
    expect_nodes(run, {"quick": SUCCESS, "slow": CANCELLED})
    assert run.node("after")["status"] in (NOT_STARTED, CANCELLED)
    assert "timeout" in run.record["error"]
    assert not (run.dir / "never.txt").exists()
    assert run.file("handlers.txt").split() == ["failure", "exit"]


def test_timeout_cancels_downstream_steps(dagu):
    run = dagu.start("""
        timeoutSec: 1
        steps:
          - name: slow
            command: sleep 30
          - name: after
            command: "true"
        """)
    expect_run(run, RUN_FAILED)
    expect_nodes(run, {"slow": CANCELLED, "after": CANCELLED})


@pytest.mark.parametrize("max_active, lower, upper", [
    pytest.param(2, 0.55, 3.0, id="two-at-a-time"),
    pytest.param(1, 1.15, 5.0, id="one-at-a-time"),
    pytest.param(0, 0.0, 0.55, id="unlimited"),
])
def test_max_active_steps(dagu, max_active, lower, upper):
    steps = "".join(f"  - name: s{i}\n    command: {STAMP} >> s{i}.t; sleep 0.3; "
                    f"{STAMP} >> s{i}.t\n" for i in range(4))
    run = dagu.start(f"type: graph\nmaxActiveSteps: {max_active}\nsteps:\n" + steps)
    expect_run(run, RUN_SUCCESS)
    spans = [run.stamps(f"s{i}.t") for i in range(4)]
    total = max(e for _, e in spans) - min(s for s, _ in spans)
    assert lower <= total < upper, total
    if max_active:
        for s, _ in spans:   # at no start time were more than max_active steps running
            assert sum(1 for a, b in spans if a <= s < b) <= max_active


@pytest.mark.slow
def test_delay_sec_between_step_starts(dagu):
    steps = "".join(f"  - name: s{i}\n    command: {STAMP} >> s{i}.t; sleep 1.2\n"
                    for i in range(2))
    run = dagu.start("type: graph\ndelaySec: 1\nsteps:\n" + steps)
    expect_run(run, RUN_SUCCESS)
    starts = sorted(run.stamps(f"s{i}.t")[0] for i in range(2))
    assert 0.8 <= starts[1] - starts[0] < 4


@pytest.mark.slow
def test_delay_sec_with_quick_steps_finishes(dagu):
    """Run in a child process: the bug is a hang, which must not hang the test session."""
    path = dagu.write("delaySec: 1\nsteps:\n  - name: s0\n    command: 'true'\n")
    code = ("import sys; sys.path.insert(0, %r); from dagu.cli import main; "
            "sys.exit(main(['start', '-q', %r]))" % (str(Path(__file__).parents[1]), str(path)))
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rc = proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("dagu start did not finish within 3 s")
    assert rc == 0
    expect_run(Run(rc, dagu.status(path), path, ""), RUN_SUCCESS)


# ================================================================================================
# dagu retry
# ================================================================================================

RETRY_DAG = """
handlerOn:
  success:
    command: echo success >> handlers.txt
  failure:
    command: echo failure >> handlers.txt
steps:
  - name: step1
    command: n=$(cat c1 2>/dev/null || echo 0); echo $((n+1)) > c1; echo one
    output: ONE
  - name: step2
    command: test -f flag && echo "two after ${ONE}"
  - name: step3
    command: echo three >> s3.txt
"""


def test_retry_reruns_failed_step_and_descendants(dagu):
    first = dagu.start(RETRY_DAG)
    expect_run(first, RUN_FAILED)
    expect_nodes(first, {"step1": SUCCESS, "step2": FAILED, "step3": CANCELLED})
    assert first.file("c1").strip() == "1"
    (first.dir / "flag").write_text("")

    again = dagu.retry(first)
    expect_run(again, RUN_SUCCESS)
    assert again.run_id == first.run_id
    assert again.record["attempt"] == 2
    expect_nodes(again, {"step1": SUCCESS, "step2": SUCCESS, "step3": SUCCESS})
    assert again.file("c1").strip() == "1"              # step1 not re-run
    assert again.node("step1")["startedAt"] == first.node("step1")["startedAt"]
    assert again.out("step2").strip() == "two after one"  # outputs of kept steps still visible
    assert again.file("s3.txt").split() == ["three"]
    assert [h["dagRunId"] for h in dagu.history(first.path)] == [first.run_id]
    assert again.file("handlers.txt").split() == ["failure", "success"]
    assert again.record["onFailure"]["status"] == NOT_STARTED
    assert again.record["onSuccess"]["status"] == SUCCESS
    assert "attempt-2" in again.node("step2")["stdout"]

    single = dagu.retry(again, step="step1")
    expect_run(single, RUN_SUCCESS)
    assert single.record["attempt"] == 3
    assert single.file("c1").strip() == "2"             # only step1 re-ran
    assert single.file("s3.txt").split() == ["three"]
    expect_nodes(single, {"step1": SUCCESS, "step2": SUCCESS, "step3": SUCCESS})


def test_retry_unknown_run_or_step(dagu):
    run = dagu.start(RETRY_DAG)
    rc, _, err = dagu.cli("retry", "--run-id", "no-such-run", str(run.path))
    assert rc == 1 and "not found" in err
    rc, _, err = dagu.cli("retry", "--run-id", run.run_id, "--step", "nope", str(run.path))
    assert rc == 1 and "nope" in err


def test_retry_uses_the_runs_params(dagu):
    run = dagu.start("""
        params: P=default
        steps:
          - name: s
            command: echo "$P" >> seen.txt; test -f flag
        """, "P=given")
    expect_run(run, RUN_FAILED)
    (run.dir / "flag").write_text("")
    again = dagu.retry(run)
    expect_run(again, RUN_SUCCESS)
    assert again.file("seen.txt").split() == ["given", "given"]


# ================================================================================================
# Sub-DAGs (run:) and parallel
# ================================================================================================

CHILD = """
name: child
params: "X=default Y=1"
steps:
  - name: work
    command: echo "$X-$Y" && test "$X" != fail
    output: RESULT
  - name: whoami
    command: echo "$DAG_NAME $DAG_RUN_ID"
    output: WHO
"""

PARENT = """
steps:
  - name: call
    run: child
    params: "X=%s Y=2"
    output: OUT
  - name: use
    command: echo "${OUT.outputs.RESULT}"
"""


def _store(dagu):
    return RunStore(dagu.config.db_path)


@pytest.mark.parametrize("layout", ["same-file", "separate-file"])
def test_sub_dag(dagu, layout):
    if layout == "same-file":
        path = dagu.write(PARENT % "hello" + "---\n" + CHILD, name="parent")
    else:
        path = dagu.write(PARENT % "hello", name="parent")
        dagu.write(CHILD, name="child", where=path.parent)
    run = dagu.start(path)
    expect_run(run, RUN_SUCCESS)
    expect_nodes(run, {"call": SUCCESS, "use": SUCCESS})
    assert run.out("use").strip() == "hello-2"
    out = json.loads(run.output("call", "OUT"))
    children = run.node("call")["children"]
    assert len(children) == 1
    assert out["outputs"] == {"RESULT": "hello-2", "WHO": f"child {children[0]['dagRunId']}"}
    assert out["name"] == "child" and out["dagRunId"] == children[0]["dagRunId"]
    with _store(dagu) as store:
        recorded = store.children(run.run_id)
        found = store.find_run(children[0]["dagRunId"])
    assert [c["dagRunId"] for c in recorded] == [children[0]["dagRunId"]]
    child = recorded[0]
    assert (child["name"], child["status"]) == ("child", RUN_SUCCESS)
    assert child["rootDAGRunId"] == run.run_id and child["parentDAGRunId"] == run.run_id
    assert child["rootDAGRunName"] == "parent" and child["parentDAGRunName"] == "parent"
    assert child["paramsList"] == ["X=hello", "Y=2"]
    assert found is not None and found["dagRunId"] == child["dagRunId"]
    # a child run is not a run of the parent DAG
    assert [h["dagRunId"] for h in dagu.history(path)] == [run.run_id]


def test_failing_sub_dag_fails_parent_step(dagu):
    path = dagu.write(PARENT % "fail" + "---\n" + CHILD, name="parent")
    run = dagu.start(path)
    expect_run(run, RUN_FAILED)
    expect_nodes(run, {"call": FAILED, "use": CANCELLED})
    assert "child dag-run failed" in run.node("call")["error"]
    with _store(dagu) as store:
        (child,) = store.children(run.run_id)
    assert child["status"] == RUN_FAILED


@pytest.mark.slow
def test_nested_sub_dags_share_the_root(dagu):
    path = dagu.write("""
        steps:
          - name: call
            run: middle
        """, name="root")
    dagu.write("""
        steps:
          - name: call-leaf
            run: leaf
        """, name="middle", where=path.parent)
    dagu.write("""
        steps:
          - name: work
            command: echo "leaf of $DAG_NAME"
        """, name="leaf", where=path.parent)
    run = dagu.start(path)
    expect_run(run, RUN_SUCCESS)
    with _store(dagu) as store:
        children = {c["name"]: c for c in store.children(run.run_id)}
    assert set(children) == {"middle", "leaf"}
    assert all(c["rootDAGRunId"] == run.run_id for c in children.values())
    assert children["middle"]["parentDAGRunId"] == run.run_id
    assert children["leaf"]["parentDAGRunId"] == children["middle"]["dagRunId"]
    assert all(c["status"] == RUN_SUCCESS for c in children.values())


PAR_CHILD = f"""
name: item
steps:
  - name: work
    command: {STAMP} >> "item-$1.t"; sleep 0.2; {STAMP} >> "item-$1.t"; [ "$1" != bad ] && echo "did $1"
    output: DID
"""


@pytest.mark.parametrize("source, items, max_concurrent", [
    pytest.param("items: [a, b, c]\n      maxConcurrent: 2", ["a", "b", "c"], 2, id="items-list"),
    pytest.param("${LIST}\n", ["x", "y", "z"], 10, id="json-list-variable"),
    pytest.param("items: [p, q]\n      maxConcurrent: 1", ["p", "q"], 1, id="one-at-a-time"),
])
def test_parallel(dagu, source, items, max_concurrent):
    path = dagu.write(f"""
steps:
  - name: list
    command: echo '["x", "y", "z"]'
    output: LIST
  - name: fan
    run: item
    parallel:
      {source}
    output: RES
---
{PAR_CHILD}""", name="fan")
    run = dagu.start(path)
    expect_run(run, RUN_SUCCESS)
    node = run.node("fan")
    assert sorted(c["params"] for c in node["children"]) == sorted(items)
    res = json.loads(run.output("fan", "RES"))
    assert res["summary"]["total"] == len(items) and res["summary"]["failed"] == 0
    assert sorted(o["DID"] for o in res["outputs"]) == sorted(f"did {i}" for i in items)
    spans = [run.stamps(f"item-{i}.t") for i in items]
    for s, _ in spans:
        assert sum(1 for a, b in spans if a <= s < b) <= max_concurrent
    with _store(dagu) as store:
        assert len(store.children(run.run_id)) == len(items)


def test_parallel_failing_item_fails_step(dagu):
    path = dagu.write(f"""
steps:
  - name: fan
    run: item
    parallel:
      items: [ok, bad]
    output: RES
  - name: after
    command: "true"
---
{PAR_CHILD}""", name="fan")
    run = dagu.start(path)
    expect_run(run, RUN_FAILED)
    expect_nodes(run, {"fan": FAILED, "after": CANCELLED})
    assert "parallel execution failed" in run.node("fan")["error"]
    assert len(run.node("fan")["children"]) == 2
    assert (run.dir / "item-ok.t").exists() and (run.dir / "item-bad.t").exists()


# ================================================================================================
# status / history JSON
# ================================================================================================

def test_status_and_history_json_shape(dagu):
    path = dagu.write("""
        steps:
          - name: ok
            command: echo out
          - name: bad
            command: exit 2
        handlerOn:
          exit:
            command: "true"
        """)
    first = dagu.start(path)
    second = dagu.start(path)
    rec = second.record
    for key in ("name", "dagRunId", "status", "statusLabel", "params", "paramsList", "nodes",
                "startedAt", "finishedAt", "log", "error", "rootDAGRunId", "attempt"):
        assert key in rec, key
    assert rec["name"] == "dag" and rec["status"] == RUN_FAILED and rec["statusLabel"] == "failed"
    assert rec["startedAt"].endswith("Z") and rec["finishedAt"].endswith("Z")
    assert rec["finishedAt"] >= rec["startedAt"]
    assert rec["rootDAGRunId"] == rec["dagRunId"] and rec["parentDAGRunId"] == ""
    ok, bad = rec["nodes"]
    assert (ok["status"], ok["statusLabel"], ok["exitCode"]) == (SUCCESS, "finished", 0)
    assert (bad["status"], bad["statusLabel"], bad["exitCode"]) == (FAILED, "failed", 2)
    for node in (ok, bad):
        for key in ("step", "stdout", "stderr", "startedAt", "finishedAt", "status",
                    "statusLabel", "retryCount", "doneCount", "error", "outputVariables"):
            assert key in node, key
        assert Path(node["stdout"]).is_file() and Path(node["stderr"]).is_file()
    assert Path(ok["stdout"]).read_text() == "out\n"
    assert rec["onExit"]["step"]["name"] == "onExit" and rec["onExit"]["status"] == SUCCESS
    assert "dagSource" not in rec and "lockPath" not in rec

    hist = dagu.history(path)
    assert [h["dagRunId"] for h in hist] == [second.run_id, first.run_id]
    assert all(h["statusLabel"] == "failed" for h in hist)
    older = dagu.status(path, first.run_id)
    assert older["dagRunId"] == first.run_id


def test_status_of_unknown_dag(dagu):
    path = dagu.write("steps:\n  - name: s\n    command: 'true'\n")
    rc, out, err = dagu.cli("status", "--json", str(path))
    assert rc == 1 and "no runs" in err and out == ""


def test_run_log_records_steps(dagu):
    run = dagu.start("steps:\n  - name: s1\n    command: 'true'\n"
                     "  - name: s2\n    command: 'false'\n")
    log = Path(run.record["log"]).read_text()
    for text in ("Run started", "step=s1", "step=s2", "Run finished", run.run_id):
        assert text in log
    assert "Run started" in run.stderr     # echoed to stderr unless -q


# ================================================================================================
# Final status rules in combination
# ================================================================================================

@pytest.mark.parametrize("dag, run_status, nodes", [
    pytest.param("""
        steps:
          - name: only
            command: exit 1
            continueOn: {failure: true}
        """, RUN_FAILED, {"only": FAILED}, id="continued-failure-without-any-success-is-failed"),
    pytest.param("""
        type: graph
        steps:
          - name: bad
            command: exit 1
            continueOn: {failure: true}
          - name: ok
            command: "true"
        handlerOn:
          exit:
            command: exit 3
        """, RUN_PARTIAL, {"bad": FAILED, "ok": SUCCESS},
        id="handler-failure-keeps-partial-success"),
    pytest.param("""
        steps:
          - name: flaky
            command: exit 2
            retryPolicy: {limit: 1, intervalSec: 0}
            continueOn: {failure: true, markSuccess: true}
          - name: next
            command: "true"
        """, RUN_SUCCESS, {"flaky": SUCCESS, "next": SUCCESS},
        id="mark-success-after-retries-exhausted"),
    pytest.param("""
        steps:
          - name: skipped
            command: "true"
            preconditions: ["false"]
        """, RUN_SUCCESS, {"skipped": SKIPPED}, id="all-skipped-is-success"),
    pytest.param("""
        steps:
          - name: loop
            command: echo x >> loop.txt; exit 1
            repeatPolicy: {repeat: true, limit: 3, intervalSec: 0}
            continueOn: {failure: true}
          - name: next
            command: "true"
        """, RUN_PARTIAL, {"loop": FAILED, "next": SUCCESS},
        id="repeat-true-with-continue-on-failure-keeps-repeating"),
])
def test_final_status_rules(dagu, dag, run_status, nodes):
    run = dagu.start(dag)
    expect_run(run, run_status)
    expect_nodes(run, nodes)
    if "loop" in nodes:
        assert run.file("loop.txt").split() == ["x", "x", "x"]
        assert run.node("loop")["doneCount"] == 3
    if "flaky" in nodes:
        assert run.node("flaky")["retryCount"] == 1


def test_chain_step_with_explicit_depends_has_no_implicit_link(dagu):
    run = dagu.start("steps:\n" + _timed("a") + _timed("b", "    depends: []\n", sleep="0.8")
                     + _timed("c", "    depends: [a]\n"))
    expect_run(run, RUN_SUCCESS)
    a, b, c = (run.stamps(f"{n}.t") for n in "abc")
    assert c[0] >= a[1]
    assert a[0] < b[1] and b[0] < a[1]         # a and b overlap
    assert c[0] < b[1]                          # c did not wait for b


def test_retry_of_parent_retries_the_same_child_run(dagu):
    path = dagu.write("""
        steps:
          - name: call
            run: child
            params: "X=1"
        ---
        name: child
        params: "X=0"
        steps:
          - name: work
            command: echo "run $X" >> child.txt; test -f flag
        """, name="parent")
    first = dagu.start(path)
    expect_run(first, RUN_FAILED)
    (child_id,) = [c["dagRunId"] for c in first.node("call")["children"]]
    (path.parent / "flag").write_text("")
    again = dagu.retry(first)
    expect_run(again, RUN_SUCCESS)
    assert [c["dagRunId"] for c in again.node("call")["children"]][-1] == child_id
    with _store(dagu) as store:
        children = store.children(first.run_id)
    assert [(c["dagRunId"], c["status"]) for c in children] == [(child_id, RUN_SUCCESS)]
    assert children[0]["attempt"] == 2
    assert first.file("child.txt").split() == ["run", "1", "run", "1"]


def test_positional_override_does_not_replace_a_named_param(dagu):
    run = dagu.start('params: "a N=x b"\nsteps:\n  - name: show\n'
                     '    command: echo "1=$1 2=$2 3=$3 N=$N"\n', "p", "q")
    expect_run(run, RUN_SUCCESS)
    assert run.out("show").strip() == "1=p 2=q 3=b N=x"


def test_steps_with_similar_names_have_separate_logs(dagu):
    run = dagu.start("""
        type: graph
        steps:
          - name: a b
            command: sleep 0.2; echo one
            output: X
          - name: a_b
            command: echo two
            output: Y
        """)
    expect_run(run, RUN_SUCCESS)
    assert run.node("a b")["stdout"] != run.node("a_b")["stdout"]
    assert (run.output("a b", "X"), run.output("a_b", "Y")) == ("one", "two")

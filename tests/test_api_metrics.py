"""GET /metrics: strict Prometheus text format 0.0.4, every dagu_* metric with its type, and
values that follow real runs, the real queue and history deletion."""
from __future__ import annotations

import math
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dagu import __version__
from dagu.store import RunStore
from tests.apiclient import ROOT, start_server

# ------------------------------------------------------------ a strict text-format parser

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_VALUE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN")
_TIMESTAMP = re.compile(r"-?\d+")
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class FormatError(AssertionError):
    pass


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str | None = None
    typed: bool = False
    samples: list[tuple[str, dict, float]] = field(default_factory=list)

    def owns(self, sample_name: str) -> bool:
        if self.type == "histogram":
            return sample_name in (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        if self.type == "summary":
            return sample_name in (self.name, f"{self.name}_sum", f"{self.name}_count")
        return sample_name == self.name

    def value(self, **labels) -> float:
        found = [v for n, lab, v in self.samples if n == self.name and lab == labels]
        assert len(found) == 1, f"{self.name}{labels}: {len(found)} samples in {self.samples}"
        return found[0]


def parse_metrics(text: str) -> dict[str, Family]:
    """Families of a text exposition; FormatError on anything the format does not allow."""
    if text and not text.endswith("\n"):
        raise FormatError("the exposition must end with a newline")
    families: dict[str, Family] = {}
    closed: set[str] = set()
    current: Family | None = None

    def switch_to(name: str, lineno: int) -> Family:
        nonlocal current
        if current is not None and current.name == name:
            return current
        if name in closed or (name in families and families[name].samples):
            raise FormatError(f"line {lineno}: metric family {name} is not contiguous")
        if current is not None:
            closed.add(current.name)
        current = families.setdefault(name, Family(name))
        return current

    for lineno, line in enumerate(text.split("\n")[:-1] if text else [], 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[0] != "#" or parts[1] not in ("HELP", "TYPE"):
                continue            # a plain comment
            name = parts[2]
            if not _NAME.fullmatch(name):
                raise FormatError(f"line {lineno}: invalid metric name {name!r}")
            family = switch_to(name, lineno)
            if family.samples:
                raise FormatError(f"line {lineno}: {parts[1]} after samples of {name}")
            rest = parts[3] if len(parts) > 3 else ""
            if parts[1] == "HELP":
                if family.help is not None:
                    raise FormatError(f"line {lineno}: second HELP for {name}")
                family.help = _unescape(rest, lineno, quote=False)
            else:
                if family.typed:
                    raise FormatError(f"line {lineno}: second TYPE for {name}")
                if rest not in _TYPES:
                    raise FormatError(f"line {lineno}: unknown type {rest!r}")
                family.type, family.typed = rest, True
            continue
        name, labels, value = _sample(line, lineno)
        if current is None or not current.owns(name):
            base = current.name if current is not None else None
            family = switch_to(name, lineno)
            if base is not None and family.name == base:
                raise FormatError(f"line {lineno}: {name} does not belong to {base}")
        if "le" in labels and current.type == "histogram" and name.endswith("_bucket"):
            pass
        elif current.type == "histogram" and name.endswith("_bucket"):
            raise FormatError(f"line {lineno}: histogram bucket without le")
        series = (name, tuple(sorted(labels.items())))
        if any((n, tuple(sorted(lab.items()))) == series for n, lab, _ in current.samples):
            raise FormatError(f"line {lineno}: duplicate series {name}{labels}")
        current.samples.append((name, labels, value))
    for family in families.values():
        _check_family(family)
    return families


def _sample(line: str, lineno: int) -> tuple[str, dict, float]:
    m = _NAME.match(line)
    if not m:
        raise FormatError(f"line {lineno}: no metric name in {line!r}")
    name, pos = m.group(), m.end()
    labels: dict[str, str] = {}
    if pos < len(line) and line[pos] == "{":
        pos += 1
        while True:
            if line[pos:pos + 1] == "}":
                pos += 1
                break
            lm = _LABEL_NAME.match(line, pos)
            if not lm:
                raise FormatError(f"line {lineno}: bad label name at column {pos + 1}")
            label, pos = lm.group(), lm.end()
            if line[pos:pos + 2] != '="':
                raise FormatError(f"line {lineno}: label {label} needs =\"value\"")
            pos += 2
            start = pos
            while pos < len(line) and line[pos] != '"':
                pos += 2 if line[pos] == "\\" else 1
            if pos >= len(line):
                raise FormatError(f"line {lineno}: unterminated label value")
            if label in labels:
                raise FormatError(f"line {lineno}: duplicate label {label}")
            labels[label] = _unescape(line[start:pos], lineno, quote=True)
            pos += 1
            if line[pos:pos + 1] == ",":
                pos += 1
            elif line[pos:pos + 1] != "}":
                raise FormatError(f"line {lineno}: expected , or }} after label {label}")
    if line[pos:pos + 1] != " ":
        raise FormatError(f"line {lineno}: expected one space before the value")
    fields = line[pos + 1:].split(" ")
    if not 1 <= len(fields) <= 2 or not _VALUE.fullmatch(fields[0]):
        raise FormatError(f"line {lineno}: bad value/timestamp {line[pos + 1:]!r}")
    if len(fields) == 2 and not _TIMESTAMP.fullmatch(fields[1]):
        raise FormatError(f"line {lineno}: bad timestamp {fields[1]!r}")
    return name, labels, float(fields[0].replace("Inf", "inf"))


def _unescape(text: str, lineno: int, quote: bool) -> str:
    out, i = [], 0
    allowed = {"\\": "\\", "n": "\n", '"': '"'} if quote else {"\\": "\\", "n": "\n"}
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1:i + 2]
            if nxt not in allowed:
                raise FormatError(f"line {lineno}: invalid escape \\{nxt}")
            out.append(allowed[nxt])
            i += 2
            continue
        if quote and ch == '"':
            raise FormatError(f"line {lineno}: unescaped quote in label value")
        out.append(ch)
        i += 1
    return "".join(out)


def _check_family(family: Family) -> None:
    if family.type == "counter":
        for name, labels, value in family.samples:
            if math.isnan(value) or value < 0:
                raise FormatError(f"counter {name}{labels} = {value}")
    if family.type != "histogram":
        return
    groups: dict[tuple, dict] = {}
    for name, labels, value in family.samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        group = groups.setdefault(key, {"buckets": []})
        if name.endswith("_bucket"):
            group["buckets"].append((float(labels["le"].replace("Inf", "inf")), value))
        else:
            group[name.rsplit("_", 1)[1]] = value
    for key, group in groups.items():
        buckets = group["buckets"]
        if not buckets or buckets[-1][0] != math.inf:
            raise FormatError(f"{family.name}{dict(key)}: no le=\"+Inf\" bucket last")
        if [b for b, _ in buckets] != sorted(b for b, _ in buckets):
            raise FormatError(f"{family.name}{dict(key)}: buckets out of order")
        counts = [c for _, c in buckets]
        if counts != sorted(counts):
            raise FormatError(f"{family.name}{dict(key)}: buckets not cumulative {counts}")
        if "count" not in group or "sum" not in group:
            raise FormatError(f"{family.name}{dict(key)}: _sum and _count are required")
        if group["count"] != counts[-1]:
            raise FormatError(f"{family.name}{dict(key)}: _count != +Inf bucket")


VALID = """# HELP a_total Things, with a \\\\ backslash and \\n newline.
# TYPE a_total counter
a_total{x="q\\"uote",y="back\\\\slash\\nline",} 3
a_total{x="other"} 1e3 1700000000000
# a plain comment
# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="+Inf"} 2
h_sum 3.5
h_count 2

untyped_one NaN
g -Inf
"""


def test_parser_accepts_the_format():
    families = parse_metrics(VALID)
    assert families["a_total"].type == "counter"
    assert families["a_total"].help == "Things, with a \\ backslash and \n newline."
    assert families["a_total"].samples[0][1] == {"x": 'q"uote', "y": "back\\slash\nline"}
    assert families["a_total"].value(x="other") == 1000
    assert families["h"].type == "histogram" and len(families["h"].samples) == 4
    assert families["untyped_one"].type == "untyped"
    assert families["g"].value() == -math.inf


@pytest.mark.parametrize("text, message", [
    ("a 1", "end with a newline"),
    ("a{x=\"1\\t\"} 1\n", "invalid escape"),
    ("a{x=\"1\"\"} 1\n", "expected , or }"),
    ("a{x=1} 1\n", "needs ="),
    ("a{x=\"1\",x=\"2\"} 1\n", "duplicate label"),
    ("a{x=\"1} 1\n", "unterminated"),
    ("a 1,5\n", "bad value"),
    ("a inf\n", "bad value"),
    ("a  1\n", "bad value"),
    ("a 1 2 3\n", "bad value"),
    ("a 1 x\n", "bad timestamp"),
    ("a 1\na 2\n", "duplicate series"),
    ("a 1\nb 1\na{x=\"1\"} 2\n", "not contiguous"),
    ("a 1\n# TYPE a gauge\n", "TYPE after samples"),
    ("# TYPE a gauge\na 1\n# HELP a late\n", "HELP after samples"),
    ("# TYPE a gauge\n# TYPE a gauge\n", "second TYPE"),
    ("# HELP a x\n# HELP a y\n", "second HELP"),
    ("# TYPE a gauges\n", "unknown type"),
    ("# TYPE 1a gauge\n", "invalid metric name"),
    ("# TYPE c counter\nc -1\n", "counter"),
    ("# TYPE h histogram\nh_bucket 1\n", "without le"),
    ("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
     "not cumulative"),
    ("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", "+Inf"),
    ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", "_count != +Inf"),
    ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n", "_sum and _count"),
])
def test_parser_rejects_what_the_format_forbids(text, message):
    with pytest.raises(FormatError, match=re.escape(message)):
        parse_metrics(text)


# ------------------------------------------------------------ against a real server

EXPECTED = {
    "dagu_info": "gauge",
    "dagu_uptime_seconds": "gauge",
    "dagu_dag_runs_currently_running": "gauge",
    "dagu_dag_runs_queued_total": "gauge",
    "dagu_dag_runs_total": "counter",
    "dagu_dags_total": "gauge",
    "dagu_scheduler_running": "gauge",
    "dagu_dag_run_duration_seconds": "histogram",
}
WEIRD = 'we"ird\\'      # the DAG name in weird.yaml: a quote and a backslash
STATUSES = ("success", "error", "cancelled", "partial_success")
DAGS = {
    "ok": "steps:\n  - name: s\n    command: echo hi\n",
    "fail": "steps:\n  - name: s\n    command: exit 3\n",
    "partial": ("steps:\n  - name: bad\n    command: exit 1\n    continueOn:\n      failure: true\n"
                "  - name: good\n    command: echo ok\n    depends: [bad]\n"),
    "slow": "steps:\n  - name: s\n    command: sleep 30\n",
    "weird": "name: 'we\"ird\\'\nsteps:\n  - name: s\n    command: echo quoted\n",
}


def write_dags(home: Path) -> None:
    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for name, body in DAGS.items():
        (dags / f"{name}.yaml").write_text(body)
    (dags / "broken.yaml").write_text("steps: [[[\n")


def scrape(server) -> dict[str, Family]:
    reply = server.get("/metrics")
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse_metrics(reply.body.decode("utf-8"))


def scrape_until(server, check, timeout: float = 8.0) -> dict[str, Family]:
    """Scrape until check(families) is true (the text is cached for about a second)."""
    deadline = time.monotonic() + timeout
    while True:
        families = scrape(server)
        try:
            check(families)
            return families
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def totals(families) -> dict[str, float]:
    return {s: families["dagu_dag_runs_total"].value(status=s) for s in STATUSES}


def durations(families) -> dict[str, float]:
    hist = families["dagu_dag_run_duration_seconds"]
    return {lab["dag"]: v for n, lab, v in hist.samples if n.endswith("_count")}


def dagu(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(ROOT / "dagu.py"), *args], env=env,
                          capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    home = tmp_path_factory.mktemp("metrics") / "home"
    write_dags(home)
    server = start_server(home)
    yield server
    server.stop()


def test_every_metric_has_help_type_and_the_right_labels(srv):
    families = scrape(srv)
    for name, kind in EXPECTED.items():
        assert name in families, f"{name} missing"
        assert families[name].type == kind and families[name].typed, name
        assert families[name].help, name
    info = families["dagu_info"]
    assert info.samples == [("dagu_info", {"version": __version__, "build_date": "",
                                           "python_version": platform.python_version()}, 1.0)]
    assert families["dagu_scheduler_running"].value() == 1
    assert families["dagu_dags_total"].value() == len(DAGS)       # broken.yaml is not counted
    assert set(totals(families)) == set(STATUSES)
    for name in EXPECTED:
        if name not in ("dagu_info", "dagu_dag_runs_total", "dagu_dag_run_duration_seconds"):
            assert [lab for _, lab, _ in families[name].samples] == [{}], name


def test_uptime_counts_from_server_start(srv):
    first = scrape(srv)["dagu_uptime_seconds"].value()
    assert 0 < first < 120
    later = scrape_until(srv, lambda f: f["dagu_uptime_seconds"].value() > first)
    assert later["dagu_uptime_seconds"].value() - first < 10


def test_dags_total_follows_the_dags_directory(srv):
    before = scrape(srv)["dagu_dags_total"].value()
    extra = srv.dags / "extra.yaml"
    extra.write_text(DAGS["ok"])
    try:
        scrape_until(srv, lambda f: _eq(f["dagu_dags_total"].value(), before + 1))
    finally:
        extra.unlink()
    scrape_until(srv, lambda f: _eq(f["dagu_dags_total"].value(), before))


def _eq(actual, expected):
    assert actual == expected, (actual, expected)


@pytest.fixture
def fresh(tmp_path):
    home = tmp_path / "home"
    write_dags(home)
    server = start_server(home)
    yield server
    server.stop()


def test_counters_running_gauge_and_histogram_follow_runs(fresh):
    srv = fresh
    env = dict(srv.env)
    base = scrape(srv)
    assert totals(base) == dict.fromkeys(STATUSES, 0)
    assert base["dagu_dag_runs_currently_running"].value() == 0

    assert dagu(env, "start", "ok", check=False).returncode == 0
    assert dagu(env, "start", "fail", check=False).returncode != 0
    dagu(env, "start", "partial", check=False)
    dagu(env, "start", "weird")
    slow = subprocess.Popen([sys.executable, str(ROOT / "dagu.py"), "start", "--run-id", "slow1",
                             "slow"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        scrape_until(srv, lambda f: _eq(f["dagu_dag_runs_currently_running"].value(), 1))
        dagu(env, "stop", "slow")
        assert slow.wait(timeout=20) != 0
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
    expected = {"success": 2, "error": 1, "cancelled": 1, "partial_success": 1}
    families = scrape_until(srv, lambda f: (_eq(totals(f), expected),
                                            _eq(durations(f), {"ok": 1, "fail": 1, "partial": 1,
                                                               "slow": 1, WEIRD: 1})))
    assert families["dagu_dag_runs_currently_running"].value() == 0
    hist = families["dagu_dag_run_duration_seconds"]
    slow_sum = [v for n, lab, v in hist.samples if n.endswith("_sum") and lab["dag"] == "slow"][0]
    assert 0 < slow_sum < 30
    ok_buckets = {lab["le"]: v for n, lab, v in hist.samples
                  if n.endswith("_bucket") and lab["dag"] == "ok"}
    assert ok_buckets["+Inf"] == 1 and ok_buckets["5"] == 1

    # retention (or anyone) deleting history never makes a counter go down
    with RunStore(str(srv.home / "data" / "dagu.db")) as store:
        for name in ("ok", "fail", "partial", "slow", WEIRD):
            store.delete_old_runs(name, before_ms=int(time.time() * 1000) + 60_000)
        assert store.count_runs() == 0
    time.sleep(2.5)     # past the text and histogram caches
    for _ in range(3):
        families = scrape(srv)
        assert totals(families) == expected
        assert durations(families)["ok"] == 1
        time.sleep(0.5)

    # and runs finishing after the deletion are still counted
    dagu(env, "start", "ok")
    expected["success"] += 1
    scrape_until(srv, lambda f: (_eq(totals(f), expected), _eq(durations(f)["ok"], 2)))


def test_counters_start_from_stored_history_in_a_new_process(tmp_path):
    home = tmp_path / "home"
    write_dags(home)
    env = {k: v for k, v in start_env(home).items()}
    dagu(env, "start", "ok")
    dagu(env, "start", "ok")
    dagu(env, "start", "fail", check=False)
    server = start_server(home)
    try:
        families = scrape(server)
        assert totals(families) == {"success": 2, "error": 1, "cancelled": 0, "partial_success": 0}
        assert durations(families) == {"ok": 2, "fail": 1}
    finally:
        server.stop()


def start_env(home: Path) -> dict:
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update(DAGU_HOME=str(home), HOME=str(home))
    return env


def test_queue_gauge_is_the_queue_length_and_server_has_no_scheduler(tmp_path):
    home = tmp_path / "home"
    write_dags(home)
    server = start_server(home, command="server")
    try:
        env = dict(server.env)
        families = scrape(server)
        assert families["dagu_scheduler_running"].value() == 0
        assert families["dagu_dag_runs_queued_total"].value() == 0
        for i in range(3):
            dagu(env, "enqueue", "--run-id", f"q{i}", "ok")
        db = str(home / "data" / "dagu.db")

        def queued_is(n):
            def check(f):
                with RunStore(db) as store:
                    length = store.queue_length()
                _eq(length, n)
                _eq(f["dagu_dag_runs_queued_total"].value(), n)
            return check
        scrape_until(server, queued_is(3))
        dagu(env, "dequeue", "--dag-run", "ok:q1")
        scrape_until(server, queued_is(2))
    finally:
        server.stop()


def test_label_values_are_escaped(fresh):
    # a DAG whose name holds a quote and a backslash shows up escaped
    dagu(dict(fresh.env), "start", "weird")
    families = scrape_until(fresh, lambda f: _eq(durations(f).get(WEIRD), 1))
    assert WEIRD in {lab["dag"] for _, lab, _ in families["dagu_dag_run_duration_seconds"].samples}
    text = fresh.get("/metrics").body.decode()
    lines = [line for line in text.splitlines() if "ird" in line]
    assert lines, "the weird DAG has not run yet"
    for line in lines:
        assert 'dag="we\\"ird\\\\"' in line, line

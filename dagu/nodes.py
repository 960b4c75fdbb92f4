"""One step within a run: its state, how its strings are evaluated, preconditions, continueOn."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from dagu.expand import ExpandError, evaluate
from dagu.model import Condition, Step
from dagu.status import NodeStatus


@dataclass(eq=False)   # nodes are compared by identity
class NodeState:
    """Mutable state of one step during a run (guarded by the engine's lock)."""

    step: Step
    status: NodeStatus = NodeStatus.NOT_STARTED
    started_at: str = ""
    finished_at: str = ""
    retry_count: int = 0
    done_count: int = 0
    retried_at: str = ""
    error: str = ""
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    children: list[dict] = field(default_factory=list)
    continued: bool = False          # failed, but continueOn let its dependents run
    handler: bool = False
    executor: object = None          # the running executor, for stop signals
    stop_requested: bool = False
    preserved: bool = False          # kept from a previous attempt (retry)
    pid: int = 0                     # process group of the running execution
    pid_start: int = 0               # its start time (clock ticks), to recognise a reused pid

    def to_json(self, base: dict) -> dict:
        """The node as stored/shown (base holds the static step JSON)."""
        out = dict(base)
        out.update({
            "stdout": self.stdout, "stderr": self.stderr, "startedAt": self.started_at,
            "finishedAt": self.finished_at, "status": int(self.status),
            "statusLabel": self.status.label, "retryCount": self.retry_count,
            "doneCount": self.done_count, "error": self.error,
            "children": list(self.children),
            "outputVariables": {k: f"{k}={v}" for k, v in self.outputs.items()},
        })
        if self.status == NodeStatus.RUNNING and self.pid:
            out["pid"], out["pidStart"] = self.pid, self.pid_start
        if self.retried_at:
            out["retriedAt"] = self.retried_at
        if self.exit_code is not None:
            out["exitCode"] = self.exit_code
        return out

    @classmethod
    def from_json(cls, step: Step, data: dict) -> "NodeState":
        """Restore a node from a stored record (for retry)."""
        outputs = {}
        for k, v in (data.get("outputVariables") or {}).items():
            outputs[k] = v[len(k) + 1:] if isinstance(v, str) and v.startswith(k + "=") else str(v)
        return cls(step=step, status=NodeStatus(data.get("status", 0)),
                   started_at=data.get("startedAt", ""), finished_at=data.get("finishedAt", ""),
                   retry_count=data.get("retryCount", 0), done_count=data.get("doneCount", 0),
                   error=data.get("error", ""), exit_code=data.get("exitCode"),
                   stdout=data.get("stdout", ""), stderr=data.get("stderr", ""), outputs=outputs,
                   children=list(data.get("children") or []), preserved=True)


class ConditionResult:
    """Outcome of evaluating preconditions: met, and a message per failing condition."""

    def __init__(self) -> None:
        self.met = True
        self.errors: list[dict] = []
        self.evaluation_error = ""   # a condition that could not even be evaluated


def check_conditions(conditions: tuple[Condition, ...], layers: list[dict], environ: dict,
                     run_command, run_check) -> ConditionResult:
    """Dagu's rules: with `expected`, compare the evaluated text line by line (`re:` = regex);
    without, run the condition as a shell command and require exit 0."""
    result = ConditionResult()
    for cond in conditions:
        if cond.expected:
            try:
                actual = evaluate(cond.condition, layers, run_command=run_command, environ=environ)
            except ExpandError as exc:   # Dagu: an evaluation failure means "not met"
                result.met = False
                result.evaluation_error = result.evaluation_error or str(exc)
                result.errors.append({"condition": cond.condition, "expected": cond.expected,
                                      "error": str(exc)})
                continue
            ok = matches_expected(actual, cond.expected)
            message = f'condition was not met: expected "{cond.expected}", got "{actual}"'
        else:
            command = evaluate(cond.condition, layers)
            ok = run_check(command)
            message = f"condition was not met: {cond.condition}"
        result.errors.append({"condition": cond.condition, "expected": cond.expected,
                              "error": "" if ok else message})
        if not ok:
            result.met = False
    return result


def matches_expected(actual: str, expected: str) -> bool:
    """Any line equal to expected, or matching it as a regex when it starts with `re:`."""
    lines = actual.splitlines() or [""]
    if expected.startswith("re:"):
        try:
            pattern = re.compile(expected[3:])
        except re.error:
            return False
        return any(pattern.search(line) for line in lines)
    return any(line == expected for line in lines)


def output_matches(path: str, patterns: tuple[str, ...]) -> bool:
    """continueOn.output: a line of the step's stdout contains a literal or matches `re:`."""
    if not patterns or not path:
        return False
    compiled = []
    for p in patterns:
        if p.startswith("re:"):
            try:
                compiled.append(re.compile(p[3:]))
            except re.error:
                continue
        else:
            compiled.append(p)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:   # streamed: never the whole file in memory
                for p in compiled:
                    if (p in line) if isinstance(p, str) else p.search(line):
                        return True
    except OSError:
        return False
    return False


def should_continue(node: NodeState) -> bool:
    """Whether a failed node lets its dependents run (continueOn)."""
    c = node.step.continue_on
    if node.status == NodeStatus.CANCELLED:
        return False
    if c.failure:
        return True
    if node.exit_code is not None and node.exit_code in c.exit_codes:
        return True
    return output_matches(node.stdout, c.output)

"""What every step executor shares: the context it runs in, its failure type, and selection."""
from __future__ import annotations

from dataclasses import dataclass, field

from dagu.model import Step


class StepFailed(Exception):
    """An execution that failed for a reason other than a non-zero exit (message for the node)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class ExecutionContext:
    """One execution of one node: evaluated environment and variable layers."""

    engine: object
    node: object
    env: dict
    layers: list
    step_props: dict
    stdout_offset: int = 0
    output_text: str | None = None     # set by executors whose output is not the stdout file
    output_error: str = ""
    extra: dict = field(default_factory=dict)


def select_executor(step: Step):
    """A fresh executor object for the step's kind (each has run(ctx) -> exit code, stop, kill)."""
    kind = step.executor.type
    if kind in ("", "command", "shell"):
        from dagu.executors.shellstep import ShellStep
        return ShellStep()
    if kind in ("dag", "subworkflow"):
        from dagu.executors.subdag import SubDAGStep
        return SubDAGStep()
    if kind == "parallel":
        from dagu.executors.subdag import ParallelStep
        return ParallelStep()
    if kind == "jq":
        from dagu.executors.jqstep import JqStep
        return JqStep()
    if kind == "http":
        from dagu.executors.http import HTTPStep
        return HTTPStep()
    return Unsupported(kind)


class Unsupported:
    """Executor kinds this build does not run yet (ssh, docker, mail): the step fails clearly."""

    def __init__(self, kind: str):
        self.kind = kind

    def run(self, ctx: ExecutionContext) -> int:
        raise StepFailed(f"executor type {self.kind!r} is not supported by dagu-py yet")

    def stop(self, sig: int) -> None:
        pass

    def kill(self) -> None:
        pass

"""The loaded DAG: frozen dataclasses, built by spec.py, read by everything else."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CHAIN = "chain"
GRAPH = "graph"

HANDLER_NAMES = {"success": "onSuccess", "failure": "onFailure", "cancel": "onCancel",
                 "exit": "onExit"}


@dataclass(frozen=True)
class Condition:
    """A precondition (or repeat condition): a command, or a string compared with expected."""

    condition: str
    expected: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """Re-run a failed step. limit/interval may be strings evaluated at run time."""

    limit: int | str = 0
    interval_sec: int | str = 0
    exit_codes: tuple[int, ...] = ()
    backoff: float = 0.0          # multiplier; 0 means a constant interval
    max_interval_sec: int = 0     # cap for a backed-off interval; 0 means none


@dataclass(frozen=True)
class RepeatPolicy:
    """Run a step again. mode: "" (Dagu 1.17 rules), "while" or "until" (later Dagu)."""

    repeat: bool = False
    mode: str = ""
    interval_sec: int = 0
    limit: int = 0
    condition: str = ""
    expected: str = ""
    exit_codes: tuple[int, ...] = ()
    backoff: float = 0.0
    max_interval_sec: int = 0

    @property
    def enabled(self) -> bool:
        """True when the policy can cause a second execution."""
        return bool(self.repeat or self.mode or self.condition or self.exit_codes)


@dataclass(frozen=True)
class ContinueOn:
    """When a failed or skipped step lets its dependents run anyway."""

    failure: bool = False
    skipped: bool = False
    exit_codes: tuple[int, ...] = ()
    output: tuple[str, ...] = ()
    mark_success: bool = False


@dataclass(frozen=True)
class Executor:
    """How a step runs: "" / command / shell (default), dag, parallel, http, jq, ssh, mail, docker."""

    type: str = ""
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Parallel:
    """Fan a `run:` step out over items (literal list) or a variable holding a list."""

    items: tuple[Any, ...] = ()
    variable: str = ""
    max_concurrent: int = 10


@dataclass(frozen=True)
class Step:
    """One step of a DAG (also used for handlers)."""

    name: str
    id: str = ""
    description: str = ""
    dir: str = ""
    command: str = ""                 # program, or the whole shell line for a string command
    args: tuple[str, ...] = ()
    cmd_with_args: str = ""           # the command as written (string form) or joined (list form)
    command_is_list: bool = False
    shell: str = ""
    shell_packages: tuple[str, ...] = ()
    script: str = ""
    stdout: str = ""
    stderr: str = ""
    output: str = ""
    depends: tuple[str, ...] = ()
    continue_on: ContinueOn = ContinueOn()
    retry_policy: RetryPolicy = RetryPolicy()
    repeat_policy: RepeatPolicy = RepeatPolicy()
    mail_on_error: bool = False
    preconditions: tuple[Condition, ...] = ()
    signal_on_stop: str = ""
    run: str = ""                     # child DAG name (executor dag / parallel)
    params: str = ""                  # child DAG params, Dagu param-string form
    parallel: Parallel | None = None
    executor: Executor = Executor()
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Schedule:
    """One cron expression."""

    expression: str


@dataclass(frozen=True)
class MailConfig:
    """errorMail / infoMail."""

    from_: str = ""
    to: tuple[str, ...] = ()
    prefix: str = ""
    attach_logs: bool = False


@dataclass(frozen=True)
class SMTPConfig:
    host: str = ""
    port: str = ""
    username: str = ""
    password: str = ""


@dataclass(frozen=True)
class DAG:
    """A loaded DAG definition (one YAML document)."""

    name: str
    location: str = ""
    group: str = ""
    description: str = ""
    type: str = CHAIN
    tags: tuple[str, ...] = ()
    schedule: tuple[Schedule, ...] = ()
    stop_schedule: tuple[Schedule, ...] = ()
    restart_schedule: tuple[Schedule, ...] = ()
    skip_if_successful: bool = False
    catchup_window_sec: int = 0
    env: tuple[tuple[str, str], ...] = ()          # evaluated (when loaded for a run), in order
    dotenv: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = ()       # resolved params; positional named "1", "2"...
    default_params: str = ""                       # the YAML params re-serialised
    log_dir: str = ""
    steps: tuple[Step, ...] = ()
    handlers: tuple[tuple[str, Step], ...] = ()    # (kind, step), kind in HANDLER_NAMES
    preconditions: tuple[Condition, ...] = ()
    smtp: SMTPConfig | None = None
    error_mail: MailConfig | None = None
    info_mail: MailConfig | None = None
    mail_on_failure: bool = False
    mail_on_success: bool = False
    timeout_sec: int = 0
    delay_sec: int = 0
    restart_wait_sec: int = 0
    max_active_runs: int = 1
    max_active_steps: int = 0
    max_clean_up_time_sec: int = 60
    hist_retention_days: int = 30
    queue: str = ""
    local_dags: tuple["DAG", ...] = ()
    source: str = ""                               # the YAML text of this document

    def handler(self, kind: str) -> Step | None:
        """The handler step for success/failure/cancel/exit, if defined."""
        for k, step in self.handlers:
            if k == kind:
                return step
        return None

    def step(self, name: str) -> Step | None:
        """A step by name."""
        for s in self.steps:
            if s.name == name:
                return s
        return None

    def local_dag(self, name: str) -> "DAG | None":
        """A sub-DAG defined in another document of the same file."""
        for d in self.local_dags:
            if d.name == name:
                return d
        return None

    @property
    def params_list(self) -> list[str]:
        """Params as `KEY=value` strings, as the steps see them."""
        return [f"{k}={v}" for k, v in self.params]

    @property
    def queue_name(self) -> str:
        """The queue this DAG's runs wait in."""
        return self.queue or self.name

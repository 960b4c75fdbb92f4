"""One DAG run: schedule steps by their dependencies, execute them with retry/repeat, apply
continueOn, run handlers, honour timeouts and cancellation, and record every transition."""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

from dagu import graph
from dagu.clock import Clock
from dagu.executors.base import select_executor
from dagu.executors.base import ExecutionContext, StepFailed
from dagu.expand import evaluate
from dagu.logs import step_log_paths
from dagu.model import DAG, HANDLER_NAMES, Step
from dagu.nodes import NodeState, check_conditions, should_continue
from dagu.runrecord import node_json, rfc3339
from dagu.shell import command_runner, default_shell
from dagu.status import NodeStatus, RunStatus

_STATIC = ("dag", "dagSource", "nodeSteps")
SIGNAL_RESEND_SEC = 5.0


class Engine:
    """Executes one attempt of a run inside the runner process."""

    def __init__(self, dag: DAG, record: dict, *, save: Callable[[dict], None], environ: dict,
                 clock: Clock, log: Callable[[str], None], run_dir: str,
                 previous: dict | None = None, retry_step: str = "", child_args=None):
        self.dag = dag
        self.record = record
        self.save_record = save
        self.environ = environ
        self.clock = clock
        self.log = log
        self.run_dir = run_dir
        self.child_args = child_args
        self.cond = threading.Condition()
        self.attempt = int(record.get("attempt", 1))
        self.nodes = [NodeState(step=s) for s in dag.steps]
        self.by_name = {n.step.name: n for n in self.nodes}
        self.depends = {s.name: list(s.depends) for s in dag.steps}
        self.ancestors = {n: graph.ancestors(n, self.depends) for n in self.by_name}
        self.handlers = {kind: NodeState(step=s, handler=True) for kind, s in dag.handlers}
        self.static = {n.step.name: node_json(n.step) for n in self.nodes}
        self.static.update({HANDLER_NAMES[k]: node_json(h.step) for k, h in self.handlers.items()})
        self.cancelled = False
        self.timed_out = False
        self.preconditions_met = True
        self.last_error = ""
        self.running = 0
        self.threads: list[threading.Thread] = []
        self.preconditions: list[dict] = []
        self.saver = ProgressSaver(self._write_progress)
        if previous is not None:
            self._restore(previous, retry_step)

    # -- setup ----------------------------------------------------------------------------------
    def _restore(self, previous: dict, retry_step: str) -> None:
        """Retry: keep succeeded/skipped nodes, reset failed/cancelled ones and their descendants
        (or just `retry_step`)."""
        old = {n["step"]["name"]: n for n in previous.get("nodes", [])}
        for i, node in enumerate(self.nodes):
            if node.step.name in old:
                self.nodes[i] = NodeState.from_json(node.step, old[node.step.name])
        self.by_name = {n.step.name: n for n in self.nodes}
        if retry_step:
            reset = {retry_step}
        else:
            bad = [n.step.name for n in self.nodes
                   if n.status in (NodeStatus.FAILED, NodeStatus.CANCELLED, NodeStatus.RUNNING)]
            reset = graph.descendants(bad, self.depends)
        for node in self.nodes:
            if node.step.name in reset or node.status in (NodeStatus.NOT_STARTED,
                                                          NodeStatus.RUNNING):
                self.by_name[node.step.name] = NodeState(step=node.step)
        self.nodes = [self.by_name[n.step.name] for n in self.nodes]

    # -- recording ------------------------------------------------------------------------------
    def now(self) -> str:
        return rfc3339(self.clock.now())

    def snapshot(self, slim: bool = False) -> dict:
        """The record as of now (call with the lock held). slim: steps by name only, without
        the static parts, for the frequent progress saves (the store fills them back in)."""
        rec = {k: v for k, v in self.record.items() if not (slim and k in _STATIC)}
        rec["nodes"] = [n.to_json(self._base(n.step.name, slim)) for n in self.nodes]
        for kind, node in self.handlers.items():
            name = HANDLER_NAMES[kind]
            rec[name] = node.to_json(self._base(name, slim))
        rec["preconditions"] = self.preconditions
        return rec

    def _base(self, name: str, slim: bool) -> dict:
        return {"step": {"name": name}} if slim else self.static[name]

    def save(self) -> None:
        """Ask for the run's progress to be persisted (by the saver thread, soon)."""
        self.saver.request()

    def _write_progress(self) -> None:
        with self.cond:
            record = self.snapshot(slim=True)
        self.save_record(record)

    def close(self) -> None:
        """Write any pending progress and stop the saver (before the final record is written)."""
        self.saver.stop()

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> RunStatus:
        """Run to completion (or cancellation); returns the final status."""
        if not self._dag_preconditions_met():
            self.cancelled = True
            self.log("DAG preconditions were not met; the run is cancelled")
        else:
            self._schedule()
        status = self.final_status()
        self._run_handlers(status)
        status = self.final_status(after_handlers=True)
        return status

    def _dag_preconditions_met(self) -> bool:
        if not self.dag.preconditions:
            return True
        env = self._base_env()
        result = check_conditions(self.dag.preconditions, [self._run_vars()], env,
                                  command_runner(env), lambda c: self._check_command(c, env))
        self.preconditions = result.errors
        self.preconditions_met = result.met
        return result.met

    def _schedule(self) -> None:
        deadline = (self.clock.monotonic() + self.dag.timeout_sec) if self.dag.timeout_sec else None
        with self.cond:
            while True:
                self._propagate()
                if self._start_ready():
                    continue   # look again at once: a wait inside it may have used a notify
                if self.running == 0:
                    break
                if deadline is not None:
                    remaining = deadline - self.clock.monotonic()
                    if remaining <= 0:
                        self._timeout()
                        deadline = None
                        continue
                    self.cond.wait(timeout=remaining)
                else:
                    self.cond.wait()
        for t in self.threads:
            t.join()

    def _propagate(self) -> None:
        """Settle not-started nodes whose dependencies already decided their fate."""
        changed = True
        while changed:
            changed = False
            for node in self.nodes:
                if node.status != NodeStatus.NOT_STARTED:
                    continue
                verdict = self._verdict(node)
                if verdict in ("wait", "ready"):
                    continue
                node.status, node.error = verdict
                node.finished_at = self.now()
                changed = True

    def _verdict(self, node: NodeState):
        if self.cancelled and not self.timed_out:
            return "wait"   # a stop leaves unstarted steps "not started"; a timeout cancels them
        for dep_name in node.step.depends:
            dep = self.by_name[dep_name]
            if dep.status == NodeStatus.SUCCESS:
                continue
            if dep.status == NodeStatus.FAILED:
                if dep.continued:
                    continue
                return NodeStatus.CANCELLED, "upstream failed"
            if dep.status == NodeStatus.SKIPPED:
                if dep.step.continue_on.skipped:
                    continue
                return NodeStatus.SKIPPED, "upstream skipped"
            if dep.status == NodeStatus.CANCELLED:
                return NodeStatus.CANCELLED, "upstream cancelled"
            return "wait"
        return "ready"

    def _start_ready(self) -> bool:
        started = False
        if self.cancelled:
            return False
        for node in self.nodes:
            if node.status != NodeStatus.NOT_STARTED or self._verdict(node) != "ready":
                continue
            if self.dag.max_active_steps and self.running >= self.dag.max_active_steps:
                break
            node.status = NodeStatus.RUNNING
            node.started_at = self.now()
            self.running += 1
            started = True
            t = threading.Thread(target=self._node_thread, args=(node,), daemon=True)
            self.threads.append(t)
            t.start()
            if self.dag.delay_sec:   # Dagu waits delaySec after every step start
                until = self.clock.monotonic() + self.dag.delay_sec
                while not self.cancelled and self.clock.monotonic() < until:
                    self.cond.wait(timeout=until - self.clock.monotonic())
        return started

    def _node_thread(self, node: NodeState) -> None:
        try:
            self.log(f"Step started step={node.step.name}")
            self.execute_node(node)
        except Exception as exc:  # a bug must not leave the run hanging
            node.status, node.error = NodeStatus.FAILED, f"internal error: {exc}"
        finally:
            with self.cond:
                node.finished_at = self.now()
                if node.status == NodeStatus.FAILED:
                    self._record_failure(node)
                self.running -= 1
                self.cond.notify_all()
            self.log(f"Step finished step={node.step.name} status={node.status.label}")
            self.save()

    def _record_failure(self, node: NodeState) -> None:
        if node.step.continue_on.mark_success and should_continue(node):
            node.status, node.error = NodeStatus.SUCCESS, ""
            return
        node.continued = should_continue(node)
        self.last_error = node.error or f"step {node.step.name} failed"

    # -- executing one node ---------------------------------------------------------------------
    def execute_node(self, node: NodeState) -> None:
        """Preconditions, then executions with retry and repeat; sets the node's final status."""
        step = node.step
        self._prepare_logs(node)
        env = self._step_env(node)
        layers = self._layers(node)
        if step.preconditions:
            res = check_conditions(step.preconditions, layers, env, command_runner(env),
                                   lambda c: self._check_command(c, env, step))
            if not res.met:
                node.status = NodeStatus.SKIPPED
                node.error = res.evaluation_error
                return
        while True:
            failed = self._execute_once(node, env, layers)
            if self.cancelled or node.stop_requested:
                node.status = NodeStatus.CANCELLED
                node.error = node.error or "cancelled"
                return
            if failed and self._retry_allowed(node):
                node.retry_count += 1
                node.retried_at = self.now()
                self.log(f"Step retrying step={step.name} retry={node.retry_count}")
                self.save()
                self._sleep(self._retry_interval(node))
                continue
            node.done_count += 1
            if self._repeat_wanted(node, failed, env, layers):
                self.save()
                self._sleep(step.repeat_policy.interval_sec)
                if not (self.cancelled or node.stop_requested):
                    continue
            node.status = NodeStatus.FAILED if failed else NodeStatus.SUCCESS
            return

    def _prepare_logs(self, node: NodeState) -> None:
        node.stdout, node.stderr = step_log_paths(self.run_dir, node.step.name, self.attempt)
        os.makedirs(os.path.dirname(node.stdout), exist_ok=True)

    def _execute_once(self, node: NodeState, env: dict, layers: list[dict]) -> bool:
        """One execution; True when it failed (node.error/exit_code set)."""
        node.error = ""
        executor = select_executor(node.step)
        ctx = ExecutionContext(engine=self, node=node, env=env, layers=layers,
                               step_props=self._step_props())
        with self.cond:
            node.executor = executor
        if not getattr(executor, "saves_when_started", False):
            self.save()   # (a shell step saves once its process exists, with its pid)
        try:
            node.exit_code = executor.run(ctx)
            failed = node.exit_code != 0
            if failed:
                node.error = f"failed to execute step {node.step.name!r}: exit status {node.exit_code}"
        except StepFailed as exc:
            node.exit_code = exc.exit_code
            node.error = str(exc)
            failed = True
        finally:
            with self.cond:
                node.executor = None
        if node.step.output and node.step.executor.type not in ("dag", "parallel", "subworkflow"):
            self._capture_output(node, ctx)
        elif node.step.output and ctx.output_text is not None:
            node.outputs[node.step.output] = ctx.output_text
        return failed or bool(ctx.output_error)

    def _capture_output(self, node: NodeState, ctx: ExecutionContext) -> None:
        from dagu.executors.command import OutputTooLarge, read_output
        try:
            node.outputs[node.step.output] = read_output(node.stdout, ctx.stdout_offset)
        except OutputTooLarge as exc:
            ctx.output_error = str(exc)
            node.error = str(exc)
            node.exit_code = node.exit_code or 1

    def _retry_allowed(self, node: NodeState) -> bool:
        policy = node.step.retry_policy
        limit = self._policy_int(policy.limit, node)
        if self.cancelled or self.timed_out or node.retry_count >= limit:
            return False
        code = node.exit_code if node.exit_code is not None else 1
        if policy.exit_codes:
            return code in policy.exit_codes
        return code != 0

    def _retry_interval(self, node: NodeState) -> float:
        policy = node.step.retry_policy
        interval = float(self._policy_int(policy.interval_sec, node))
        if policy.backoff:
            interval *= policy.backoff ** (node.retry_count - 1)
        if policy.max_interval_sec:
            interval = min(interval, policy.max_interval_sec)
        return interval

    def _policy_int(self, value: int | str, node: NodeState) -> int:
        if isinstance(value, int):
            return value
        text = evaluate(value, self._layers(node), run_command=command_runner(self._base_env()),
                        environ=self._base_env())
        try:
            return int(text.strip())
        except ValueError:
            return 0

    def _repeat_wanted(self, node: NodeState, failed: bool, env: dict, layers: list[dict]) -> bool:
        p = node.step.repeat_policy
        if not p.enabled or self.cancelled or node.stop_requested:
            return False
        if p.limit > 0 and node.done_count >= p.limit:
            return False
        layers = [dict(node.outputs)] + layers
        if p.mode:
            ok = self._condition_holds(p, node, env, layers)
            return ok if p.mode == "while" else not ok
        if p.condition:
            return not self._condition_holds(p, node, env, layers) if p.expected else \
                self._condition_holds(p, node, env, layers)
        if p.exit_codes:
            return node.exit_code in p.exit_codes
        return p.repeat and (not failed or node.step.continue_on.failure)

    def _condition_holds(self, p, node: NodeState, env: dict, layers: list[dict]) -> bool:
        """The repeat condition: a met precondition, or the exit code in exitCode."""
        if p.condition:
            from dagu.model import Condition
            res = check_conditions((Condition(p.condition, p.expected),), layers, env,
                                   command_runner(env), lambda c: self._check_command(c, env, node.step))
            return res.met
        return node.exit_code in p.exit_codes

    def _check_command(self, command: str, env: dict, step: Step | None = None) -> bool:
        import subprocess
        shell = (step.shell.split()[0] if step and step.shell else None) or default_shell(env)
        try:
            return subprocess.run([shell, "-c", command], env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  cwd=(step.dir if step and os.path.isdir(step.dir) else None),
                                  timeout=300).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the run is cancelled."""
        if seconds <= 0:
            return
        with self.cond:
            self.cond.wait_for(lambda: self.cancelled, timeout=seconds)

    # -- variables ------------------------------------------------------------------------------
    def _run_vars(self) -> dict[str, str]:
        out = {"DAG_NAME": self.dag.name, "DAG_RUN_ID": self.record["dagRunId"],
               "DAG_RUN_LOG_FILE": self.record.get("log", "")}
        out.update(self.dag.params)
        return out

    def _layers(self, node: NodeState) -> list[dict]:
        step_vars = {"DAG_RUN_STEP_NAME": node.step.name, "DAG_RUN_STEP_STDOUT_FILE": node.stdout,
                     "DAG_RUN_STEP_STDERR_FILE": node.stderr}
        return [self._run_vars(), step_vars, self._visible_outputs(node)]

    def _visible_outputs(self, node: NodeState) -> dict[str, str]:
        """Outputs of ancestors only (handlers see every step's outputs)."""
        visible = self.ancestors.get(node.step.name, set())
        out: dict[str, str] = {}
        for n in self.nodes:   # definition order: a later step's output wins
            if n.outputs and (node.handler or n.step.name in visible):
                out.update(n.outputs)
        return out

    def _step_props(self) -> dict[str, dict[str, str]]:
        return {n.step.id: {"stdout": n.stdout, "stderr": n.stderr,
                            "exit_code": "" if n.exit_code is None else str(n.exit_code)}
                for n in self.nodes if n.step.id}

    def _base_env(self) -> dict[str, str]:
        env = dict(self.environ)
        env.update(self._run_vars())
        return env

    def _step_env(self, node: NodeState) -> dict[str, str]:
        env = self._base_env()
        layers = self._layers(node)
        for layer in layers[1:]:
            env.update(layer)
        for key, value in node.step.env:
            env[key] = evaluate(value, layers, run_command=command_runner(env), environ=env)
        return env

    # -- stop, timeout, final status ------------------------------------------------------------
    def cancel(self, sig: int = signal.SIGTERM, use_step_signal: bool = True) -> None:
        """Stop the run: signal running steps (their signalOnStop), escalate after the grace time."""
        with self.cond:
            if self.cancelled:
                return
            self.cancelled = True
            self.cond.notify_all()
        self.log("Run cancel requested")
        threading.Thread(target=self._stop_steps, args=(sig, use_step_signal), daemon=True).start()

    def _stop_steps(self, sig: int, use_step_signal: bool) -> None:
        deadline = self.clock.monotonic() + self.dag.max_clean_up_time_sec
        while True:
            with self.cond:
                running = [n for n in self.nodes if n.status == NodeStatus.RUNNING]
                if not running:
                    return
                for node in running:
                    if node.step.repeat_policy.repeat and node.executor is None:
                        continue   # a repeating step between iterations just stops repeating
                    node.stop_requested = True
                    step_sig = getattr(signal, node.step.signal_on_stop, sig) if (
                        use_step_signal and node.step.signal_on_stop) else sig
                    if node.executor is not None:
                        node.executor.stop(step_sig)
                remaining = deadline - self.clock.monotonic()
                if remaining <= 0:
                    for node in running:
                        if node.executor is not None:
                            node.executor.kill()
                    return
                self.cond.wait(timeout=min(SIGNAL_RESEND_SEC, remaining))

    def _timeout(self) -> None:
        """The run's timeoutSec passed: kill running steps; the run fails."""
        self.timed_out = True
        self.cancelled = True
        self.last_error = f"timeout: the run exceeded timeoutSec={self.dag.timeout_sec}"
        self.log(self.last_error)
        for node in self.nodes:
            if node.status == NodeStatus.RUNNING:
                node.stop_requested = True
                if node.executor is not None:
                    node.executor.kill()
        self.cond.notify_all()

    def final_status(self, after_handlers: bool = False) -> RunStatus:
        """Dagu's rules, in order: cancelled, partial success, failed, success."""
        statuses = [n.status for n in self.nodes]
        all_ok = all(s in (NodeStatus.SUCCESS, NodeStatus.SKIPPED) for s in statuses)
        if self.cancelled and not self.timed_out and not all_ok:
            return RunStatus.CANCELLED
        failed = [n for n in self.nodes if n.status == NodeStatus.FAILED]
        has_success = any(s == NodeStatus.SUCCESS for s in statuses)
        if failed and has_success and all(n.continued for n in failed) and not self.timed_out:
            return RunStatus.PARTIAL_SUCCESS
        if self.last_error or failed:
            return RunStatus.FAILED
        return RunStatus.SUCCESS

    def _run_handlers(self, status: RunStatus) -> None:
        kinds = {RunStatus.SUCCESS: "success", RunStatus.PARTIAL_SUCCESS: "success",
                 RunStatus.FAILED: "failure", RunStatus.CANCELLED: "cancel"}
        for kind in (kinds.get(status), "exit"):
            node = self.handlers.get(kind) if kind else None
            if node is None:
                continue
            node.status, node.started_at = NodeStatus.RUNNING, self.now()
            self._prepare_logs(node)
            self.save()
            was_cancelled, self.cancelled = self.cancelled, False   # handlers run after a stop too
            try:
                failed = self._execute_once(node, self._step_env(node), self._layers(node))
            finally:
                self.cancelled = was_cancelled
            node.done_count = 1
            node.status = NodeStatus.FAILED if failed else NodeStatus.SUCCESS
            node.finished_at = self.now()
            if failed:
                self.last_error = node.error
            self.save()


class ProgressSaver:
    """Writes progress on its own thread. Requests that arrive while a write is in flight
    coalesce into one more write of the latest state, so steps never wait for the database."""

    def __init__(self, write: Callable[[], None]):
        self.write = write
        self.cond = threading.Condition()
        self.dirty = False
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="progress-saver", daemon=True)
        self.thread.start()

    def request(self) -> None:
        with self.cond:
            self.dirty = True
            self.cond.notify()

    def _loop(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.dirty or self.stopping)
                if not self.dirty and self.stopping:
                    return
                self.dirty = False
            try:
                self.write()
            except Exception:   # a failed progress write is retried by the next one
                pass

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()
        self.thread.join()

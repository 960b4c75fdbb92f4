"""The default step kind: a shell command or a script, run as its own process group."""
from __future__ import annotations

import os
import threading

from dagu.executors.base import ExecutionContext, StepFailed
from dagu.executors.command import (StepProcess, StepStartError, build_argv, log_offset,
                                    write_script)
from dagu.expand import ExpandError, evaluate
from dagu.launcher import process_start_ticks
from dagu.shell import command_runner


def step_dir(ctx: ExecutionContext) -> str:
    """The step's working directory, evaluated; it must exist."""
    raw = ctx.node.step.dir or "."
    path = os.path.abspath(os.path.expanduser(evaluate(raw, ctx.layers, environ=ctx.env)))
    if not os.path.isdir(path):
        raise StepFailed(f"directory does not exist: {path}")
    return path


def extra_file(ctx: ExecutionContext, value: str) -> str:
    """A `stdout:`/`stderr:` file name, evaluated."""
    return evaluate(value, ctx.layers, environ=ctx.env) if value else ""


class ShellStep:
    """Runs `command` through the shell (or `script` from a temp file)."""

    saves_when_started = True

    def __init__(self) -> None:
        self.proc: StepProcess | None = None
        self.lock = threading.Lock()
        self.stopped_with: int | None = None

    def run(self, ctx: ExecutionContext) -> int:
        step, node = ctx.node.step, ctx.node
        cwd = step_dir(ctx)
        try:
            command = evaluate(step.cmd_with_args if not step.command_is_list else step.command,
                               ctx.layers, run_command=command_runner(ctx.env, cwd),
                               step_props=ctx.step_props)
            args = tuple(evaluate(a, ctx.layers, step_props=ctx.step_props) for a in step.args) \
                if step.command_is_list else ()
        except ExpandError as exc:
            raise StepFailed(f"failed to evaluate the command: {exc}") from None
        script_path = ""
        if step.script:
            script_path = write_script(cwd, evaluate(step.script, ctx.layers, step_props=ctx.step_props))
            if not step.command_is_list:
                command, args = (command if step.cmd_with_args else ""), ()
        try:
            argv = build_argv(command=command, args=args, command_is_list=step.command_is_list,
                              script_path=script_path, shell=step.shell, environ=ctx.env)
            ctx.stdout_offset = log_offset(node.stdout)
            proc = StepProcess()
            with self.lock:
                self.proc = proc
            proc.start(argv, cwd=cwd, env=ctx.env, stdout_path=node.stdout,
                       stderr_path=node.stderr, extra_stdout=extra_file(ctx, step.stdout),
                       extra_stderr=extra_file(ctx, step.stderr))
            node.pid, node.pid_start = proc.pid, process_start_ticks(proc.pid)
            ctx.engine.save()   # the pid lets an orphan sweep kill this group if the runner dies
            if self.stopped_with is not None:
                proc.send_signal(self.stopped_with)
            return proc.wait()
        except StepStartError as exc:
            raise StepFailed(str(exc)) from None
        finally:
            if script_path:
                try:
                    os.unlink(script_path)
                except OSError:
                    pass

    def stop(self, sig: int) -> None:
        with self.lock:
            self.stopped_with = sig
            if self.proc is not None:
                self.proc.send_signal(sig)

    def kill(self) -> None:
        with self.lock:
            if self.proc is not None:
                self.proc.kill()

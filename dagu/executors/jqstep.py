"""`executor: jq`: run a jq query (command) over JSON (script); results go to stdout.

As in Dagu, invalid input JSON or a query syntax error fails the step; an error while the query
runs is reported on stderr after the results produced so far, and the step succeeds."""
from __future__ import annotations

from dagu import jq
from dagu.executors.base import ExecutionContext, StepFailed
from dagu.executors.command import log_offset
from dagu.expand import evaluate


class JqStep:
    def run(self, ctx: ExecutionContext) -> int:
        step = ctx.node.step
        query = evaluate(step.cmd_with_args, ctx.layers, step_props=ctx.step_props)
        data = evaluate(step.script, ctx.layers, step_props=ctx.step_props)
        try:
            out, err = jq.execute(query, data, raw=bool(step.executor.config.get("raw")))
        except jq.JqError as exc:
            raise StepFailed(str(exc)) from None
        ctx.stdout_offset = log_offset(ctx.node.stdout)
        with open(ctx.node.stdout, "a", encoding="utf-8") as fh:
            fh.write(out)
        with open(ctx.node.stderr, "a", encoding="utf-8") as fh:
            fh.write(err + "\n" if err else "")
        return 0

    def stop(self, sig: int) -> None:
        pass

    def kill(self) -> None:
        pass

"""`run:` steps: a child DAG run (its own runner process), or many of them with `parallel:`.

A child's run id is derived from the parent run, the step and the params, so retrying the parent
retries the same child instead of creating another one (Dagu's rule)."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

from dagu.dags import resolve_dag_path
from dagu.errors import DaguError
from dagu.executors.base import ExecutionContext, StepFailed
from dagu.executors.shellstep import step_dir
from dagu.expand import ExpandError, evaluate
from dagu.launcher import dagu_command
from dagu.params import scalar_text
from dagu.shell import command_runner

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def child_run_id(parent_run_id: str, step_name: str, params: str, repeated: bool = False) -> str:
    """base58(sha256("<parent>:<step>:<params>")), plus randomness for repeated steps."""
    seed = f"{parent_run_id}:{step_name}:{params}"
    if repeated:
        seed += ":" + secrets.token_hex(8)
    digest = hashlib.sha256(seed.encode()).digest()
    n = int.from_bytes(digest, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    pad = len(digest) - len(digest.lstrip(b"\0"))
    return "1" * pad + out


class _ChildRunner:
    """Starts child runs and can signal them all."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.lock = threading.Lock()
        self.stopped_with: int | None = None

    def run_child(self, ctx: ExecutionContext, name: str, params: str, cwd: str,
                  stderr_path: str) -> tuple[str, int]:
        """Run one child to completion; (child run id, exit code)."""
        engine, node = ctx.engine, ctx.node
        cid = child_run_id(engine.record["dagRunId"], node.step.name, params,
                           repeated=node.done_count > 0)
        args = ["start", "--no-queue", "--run-id", cid,
                "--root", f"{engine.record['rootDAGRunName']}:{engine.record['rootDAGRunId']}",
                "--parent", f"{engine.dag.name}:{engine.record['dagRunId']}"]
        if engine.child_args and engine.child_args.get("config"):
            args += ["--config", engine.child_args["config"]]
        if engine.dag.local_dag(name) is not None:
            args += ["--local-dag", name, engine.dag.location]
        else:
            dags_dir = (engine.child_args or {}).get("dags_dir", "")
            try:
                args.append(resolve_dag_path(name, dags_dir, os.path.dirname(engine.dag.location) or cwd))
            except DaguError as exc:
                raise StepFailed(f"child DAG {name!r} not found: {exc.message}") from None
        args += ["-p", params]
        with open(stderr_path, "ab") as err:
            proc = subprocess.Popen(dagu_command() + args, cwd=cwd, env=ctx.env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err, start_new_session=True)
        with self.lock:
            self.procs.append(proc)
            if self.stopped_with is not None:
                _signal_group(proc, self.stopped_with)
        node.children.append({"dagRunId": cid, "params": params})
        engine.save()
        return cid, proc.wait()

    def stop(self, sig: int) -> None:
        with self.lock:
            self.stopped_with = sig
            for proc in self.procs:
                _signal_group(proc, sig)

    def kill(self) -> None:
        self.stop(9)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def child_summary(ctx: ExecutionContext, name: str, cid: str) -> dict:
    """What a parent sees of a finished child: name, id, params, and its output variables."""
    record = ctx.engine.store.get_run(name, cid) if ctx.engine.store else None
    outputs: dict[str, str] = {}
    for n in (record or {}).get("nodes", []):
        for k, v in (n.get("outputVariables") or {}).items():
            outputs[k] = v[len(k) + 1:] if isinstance(v, str) and v.startswith(k + "=") else v
    return {"name": name, "dagRunId": cid, "params": (record or {}).get("params", ""),
            "outputs": outputs, "status": (record or {}).get("status", 0)}


def _evaluate(text: str, ctx: ExecutionContext, cwd: str, extra: dict | None = None) -> str:
    layers = [extra] + ctx.layers if extra else ctx.layers
    try:
        return evaluate(text, layers, run_command=command_runner(ctx.env, cwd), environ=ctx.env,
                        step_props=ctx.step_props)
    except ExpandError as exc:
        raise StepFailed(f"failed to evaluate: {exc}") from None


class SubDAGStep(_ChildRunner):
    """`run: child` with `params:`; the step's output is the child's summary JSON."""

    def run(self, ctx: ExecutionContext) -> int:
        step = ctx.node.step
        cwd = step_dir(ctx)
        name = _evaluate(step.run, ctx, cwd)
        params = _evaluate(step.params, ctx, cwd)
        cid, code = self.run_child(ctx, name, params, cwd, ctx.node.stderr)
        summary = child_summary(ctx, name, cid)
        text = json.dumps({k: summary[k] for k in ("name", "dagRunId", "params", "outputs")},
                          indent=2)
        _append(ctx.node.stdout, text)
        ctx.output_text = text
        if code != 0:
            raise StepFailed(f"child dag-run failed: exit status {code}", code)
        return 0


class ParallelStep(_ChildRunner):
    """`run: child` + `parallel:` — one child per item, at most maxConcurrent at a time."""

    def run(self, ctx: ExecutionContext) -> int:
        step = ctx.node.step
        cwd = step_dir(ctx)
        name = _evaluate(step.run, ctx, cwd)
        items = list(dict.fromkeys(self._items(ctx, cwd)))
        param_list = [(_evaluate(step.params, ctx, cwd, {"ITEM": item}) if step.params else item)
                      for item in items]
        param_list = list(dict.fromkeys(param_list))
        workers = max(1, step.parallel.max_concurrent)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda p: (p, *self.run_child(ctx, name, p, cwd, ctx.node.stderr)),
                                    param_list))
        summaries, failed = [], 0
        for params, cid, code in results:
            summary = child_summary(ctx, name, cid)
            ok = code == 0
            failed += 0 if ok else 1
            summaries.append({"runId": cid, "params": params, "status": "success" if ok else "failed",
                              "output": summary["outputs"], "exitCode": code})
        text = json.dumps({
            "summary": {"total": len(results), "succeeded": len(results) - failed, "failed": failed},
            "results": summaries,
            "outputs": [s["output"] for s in summaries if s["status"] == "success"],
        }, indent=2)
        _append(ctx.node.stdout, text)
        ctx.output_text = text
        if failed:
            raise StepFailed(f"parallel execution failed with {failed} errors")
        return 0

    def _items(self, ctx: ExecutionContext, cwd: str) -> list[str]:
        par = ctx.node.step.parallel
        if par.variable:
            text = _evaluate(par.variable, ctx, cwd)
            try:
                values = json.loads(text)
            except ValueError:
                return text.split()
            if not isinstance(values, list):
                return text.split()
        else:
            values = list(par.items)
        return [_item_text(v) for v in values]


def _item_text(value: object) -> str:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if value is None:
        return "null"
    if isinstance(value, list):
        return json.dumps(value)
    return scalar_text(value)


def _append(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text + "\n")

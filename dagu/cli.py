"""Command line: Dagu's verbs and flags. Errors are one clear line on stderr and exit status 1."""
from __future__ import annotations

import argparse
import functools
import os
import sys
import traceback

from dagu import __version__, graph, params as P
from dagu.config import Config, ConfigError, load_config
from dagu.dags import load_dag_file, read_text, resolve_dag_path
from dagu.errors import DaguError, LoadError, NotFound
from dagu.model import DAG


class UsageError(DaguError):
    code = "bad_request"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit 2; Dagu's usage errors exit 1
        raise UsageError(f"{self.prog}: {message}")


def _split_params(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Words after the first `--` are DAG params."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, None


@functools.lru_cache(maxsize=1)   # argparse is slow to build; the fork server builds it once
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dagu", description="Dagu-compatible workflow engine")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.add_parser("version", help="print the version")
    p = sub.add_parser("validate", help="check DAG files; every problem is listed")
    p.add_argument("files", nargs="+", metavar="FILE")
    _config_flag(p)
    p = sub.add_parser("dry", help="show params and step order without running anything")
    _dag_args(p, params=True)
    p = sub.add_parser("start", help="run a DAG in the foreground")
    _dag_args(p, params=True, run_id=True)
    p.add_argument("-n", "--no-queue", action="store_true", help="run now even if another run is active")
    p.add_argument("--root", help=argparse.SUPPRESS)
    p.add_argument("--parent", help=argparse.SUPPRESS)
    p.add_argument("--local-dag", help=argparse.SUPPRESS)
    p = sub.add_parser("enqueue", help="queue a run of a DAG")
    _dag_args(p, params=True, run_id=True)
    p = sub.add_parser("dequeue", help="cancel a queued run")
    p.add_argument("-d", "--dag-run", required=True, metavar="NAME:RUN_ID")
    p.add_argument("-p", "--params", help=argparse.SUPPRESS)
    _config_flag(p)
    for verb, text in (("stop", "stop a running run"), ("restart", "stop and start again"),
                       ("status", "show a run")):
        p = sub.add_parser(verb, help=text)
        _dag_args(p, run_id=True)
        if verb == "status":
            p.add_argument("--json", action="store_true", help="print the run as JSON")
    p = sub.add_parser("retry", help="re-run failed steps of a run (same run id)")
    _dag_args(p, run_id=True)
    p.add_argument("--step", help="retry just this step")
    p = sub.add_parser("dispatch", help=argparse.SUPPRESS)
    p.add_argument("-d", "--dag-run", required=True, metavar="NAME:RUN_ID")
    _config_flag(p)
    p = sub.add_parser("scheduler", help="run cron schedules and the queue (foreground)")
    p.add_argument("-d", "--dags", help="DAGs directory")
    _config_flag(p)
    for verb, text in (("server", "serve the REST API (no scheduler)"),
                       ("start-all", "serve the REST API and run the scheduler")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("-s", "--host", help="address to listen on (DAGU_HOST, default 127.0.0.1)")
        p.add_argument("-p", "--port", type=int, help="port (DAGU_PORT, default 8080)")
        p.add_argument("-d", "--dags", help="DAGs directory")
        _config_flag(p)
    p = sub.add_parser("history", help="list the runs of a DAG")
    _dag_args(p)
    p.add_argument("--json", action="store_true", help="print the runs as JSON")
    p.add_argument("--limit", type=int, default=100)
    return parser


def _dag_args(p: argparse.ArgumentParser, params: bool = False, run_id: bool = False) -> None:
    p.add_argument("file", metavar="FILE|NAME")
    if params:
        p.add_argument("-p", "--params", default=None, help='params, e.g. "P1=foo bar"')
    if run_id:
        p.add_argument("-r", "--run-id", default=None)
    _config_flag(p)


def _config_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", default=None, help="config file")
    p.add_argument("-q", "--quiet", action="store_true", help="less output")


def load_cli_config(args: argparse.Namespace) -> Config:
    """Config from the environment, an optional --config file and the command's flags."""
    overrides = {"host": getattr(args, "host", None), "port": getattr(args, "port", None),
                 "dags_dir": getattr(args, "dags", None)}
    return load_config(os.environ, config_file=getattr(args, "config", None), overrides=overrides)


def param_tokens(flag: str | None, after_dash: list[str] | None) -> list[P.ParamToken] | None:
    """Params from -p and from words after `--` (those win, as in Dagu)."""
    if after_dash:
        return P.tokens_from_args(after_dash)
    if flag is not None:
        return P.parse_api_params(flag)
    return None


def cmd_version(args, config=None) -> int:
    print(__version__)
    return 0


def cmd_validate(args) -> int:
    config = load_cli_config(args)
    failed = 0
    for arg in args.files:
        try:
            path = resolve_dag_path(arg, config.dags_dir)
            dag = load_dag_file(path, config)
        except LoadError as exc:
            failed += 1
            print(f"{arg}: {len(exc.errors)} problem{'s' if len(exc.errors) != 1 else ''}:",
                  file=sys.stderr)
            for line in exc.errors:
                print(f"  {line}", file=sys.stderr)
            continue
        except DaguError as exc:
            failed += 1
            print(f"{arg}: {exc.message}", file=sys.stderr)
            continue
        if not args.quiet:
            print(f"{arg}: ok ({dag.name}, {len(dag.steps)} step{'s' if len(dag.steps) != 1 else ''})")
    return 1 if failed else 0


def cmd_dry(args) -> int:
    from dagu.runner import load_for_run   # a dry run evaluates exactly as a run would
    config = load_cli_config(args)
    path = resolve_dag_path(args.file, config.dags_dir)
    text = read_text(path)
    if text is None:
        raise NotFound(f"cannot read DAG file {path}")
    dag, _env, _source = load_for_run(text, path, config, param_tokens(args.params, args.after_dash))
    print(describe_plan(dag))
    return 0


def describe_plan(dag: DAG) -> str:
    """What a run would do: params and the step order (nothing is executed)."""
    lines = [f"DAG: {dag.name} ({dag.location})", f"params=\"[{' '.join(dag.params_list)}]\""]
    depends = {s.name: s.depends for s in dag.steps}
    order = graph.topological_order([s.name for s in dag.steps], depends)
    lines.append("Steps (in the order they would start):")
    for i, name in enumerate(order, start=1):
        deps = depends[name]
        lines.append(f"  {i}. {name}" + (f"  (after {', '.join(deps)})" if deps else ""))
    handlers = [name for kind, name in (("success", "onSuccess"), ("failure", "onFailure"),
                                        ("cancel", "onCancel"), ("exit", "onExit"))
                if dag.handler(kind)]
    if handlers:
        lines.append("Handlers: " + ", ".join(handlers))
    return "\n".join(lines)


def _with_config(name: str, with_params: bool = False):
    def run(args):
        from dagu import commands   # imported on use: `version`/`validate` stay fast to start
        fn = getattr(commands, name)
        config = load_cli_config(args)
        if with_params:
            return fn(config, args, param_tokens(args.params, args.after_dash))
        return fn(config, args)
    return run


def _service(name: str, args, **kw) -> int:
    """Long-running commands: their module only, not the run engine (faster to serve)."""
    from dagu import service
    return getattr(service, name)(load_cli_config(args), **kw)


COMMANDS = {
    "version": cmd_version, "validate": cmd_validate, "dry": cmd_dry,
    "start": _with_config("cmd_start", True),
    "enqueue": _with_config("cmd_enqueue", True),
    "dequeue": _with_config("cmd_dequeue"),
    "stop": _with_config("cmd_stop"),
    "restart": _with_config("cmd_restart"),
    "retry": _with_config("cmd_retry"),
    "status": _with_config("cmd_status"),
    "history": _with_config("cmd_history"),
    "dispatch": _with_config("cmd_dispatch"),
    "scheduler": lambda args: _service("run_scheduler", args),
    "server": lambda args: _service("run_server", args),
    "start-all": lambda args: _service("run_server", args, with_scheduler=True),
}


def main(argv: list[str] | None = None) -> int:
    """Parse argv, run the command, turn errors into one line on stderr."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    before, after = _split_params(argv)
    try:
        args = build_parser().parse_args(before)
        args.after_dash = after
        if not args.command:
            build_parser().print_help(sys.stderr)
            return 1
        return COMMANDS[args.command](args)
    except LoadError as exc:
        print("error: invalid DAG:", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return 1
    except (DaguError, ConfigError) as exc:
        print(f"error: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        if debug:
            traceback.print_exc()
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:   # `dagu status | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # never a bare traceback for a user
        print(f"error: internal error: {exc} (run with --debug for details)", file=sys.stderr)
        if debug:
            traceback.print_exc()
        return 1

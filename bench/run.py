"""Run benchmarks: `python3 bench/run.py [names...]`.

Every `bench/bench_<name>.py` that defines `NAME`, `DESCRIPTION` and `run() -> dict` (metric ->
value) is a benchmark; with no names all of them run. Each prints as a table and is written to
`bench/results/<name>.json`. Exit status 1 if a benchmark raises or reports `target_met: false`.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from types import ModuleType

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
RESULTS_DIR = os.path.join(BENCH_DIR, "results")


def discover() -> dict[str, ModuleType]:
    """NAME -> module for every bench_*.py in this directory, in file-name order."""
    found: dict[str, ModuleType] = {}
    for file_name in sorted(os.listdir(BENCH_DIR)):
        if not (file_name.startswith("bench_") and file_name.endswith(".py")):
            continue
        path = os.path.join(BENCH_DIR, file_name)
        spec = importlib.util.spec_from_file_location(file_name[:-3], path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "run", None)):
            print(f"skipping {file_name}: no run()", file=sys.stderr)
            continue
        name = getattr(module, "NAME", file_name[len("bench_"):-3])
        found[name] = module
    return found


def environment() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": str(os.cpu_count()),
    }


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def print_table(name: str, description: str, metrics: dict, seconds: float) -> None:
    print(f"\n== {name} ({seconds:.1f} s)")
    if description:
        print(f"   {description}")
    width = max((len(k) for k in metrics), default=6)
    print(f"   {'metric':<{width}}  value")
    print(f"   {'-' * width}  {'-' * 12}")
    for key, value in metrics.items():
        print(f"   {key:<{width}}  {format_value(value)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list benchmarks and exit")
    args = parser.parse_args(argv)

    sys.path.insert(0, ROOT)    # benchmarks import the dagu package from this checkout
    available = discover()
    if args.list:
        for name, module in available.items():
            print(f"{name:16} {getattr(module, 'DESCRIPTION', '')}")
        return 0
    unknown = [n for n in args.names if n not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}",
              file=sys.stderr)
        return 2

    os.makedirs(RESULTS_DIR, exist_ok=True)
    failed = False
    for name in args.names or list(available):
        module = available[name]
        description = getattr(module, "DESCRIPTION", "")
        started = time.perf_counter()
        try:
            metrics = module.run()
        except Exception:
            traceback.print_exc()
            print(f"benchmark {name} failed", file=sys.stderr)
            failed = True
            continue
        seconds = time.perf_counter() - started
        print_table(name, description, metrics, seconds)
        record = {
            "name": name,
            "description": description,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "duration_sec": round(seconds, 3),
            "environment": environment(),
            "metrics": metrics,
        }
        path = os.path.join(RESULTS_DIR, f"{name}.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=2)
            fh.write("\n")
        print(f"   -> {os.path.relpath(path, ROOT)}")
        if metrics.get("target_met") is False:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

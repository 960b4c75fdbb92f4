"""Load benchmark: YAML text -> DAG with dagu.spec.load (no evaluation), for a 200-step and a 1-step DAG."""
from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dagu import spec  # noqa: E402

NAME = "load"
DESCRIPTION = ("dagu.spec.load of a generated 200-step DAG (chain steps, explicit depends, "
               "preconditions, retryPolicy, env, output) and of a 1-step DAG, no evaluation")
TARGET_MEDIAN_MS = 20.0
WARMUP = 5
ITERATIONS = 50
LOCATION = "/tmp/bench.yaml"


def big_dag_yaml(steps: int = 200) -> str:
    """A realistic DAG with `steps` steps; a mix of every common step feature."""
    lines = [
        "name: bench-load",
        "description: generated DAG for the load benchmark",
        "tags: bench, load",
        'schedule: "*/5 * * * *"',
        "maxActiveSteps: 4",
        "histRetentionDays: 7",
        "env:",
        "  - LOG_LEVEL: info",
        "  - DATA_DIR: /tmp/bench-data",
        "  - RUN_TAG: ${LOG_LEVEL}-run",
        "params: MODE=fast COUNT=10 positional",
        "steps:",
    ]
    for i in range(steps):
        name = f"step-{i:03d}"
        lines.append(f"  - name: {name}")
        kind = i % 8
        if kind == 0:                       # plain chain step
            lines.append(f'    command: echo "step {i} in $MODE mode"')
        elif kind == 1:                     # explicit depends on two earlier steps
            deps = sorted({f"step-{max(0, i - 1):03d}", f"step-{max(0, i - 3):03d}"})
            lines.append(f"    command: ./process.sh --part {i} --count $COUNT")
            lines.append("    depends:")
            lines.extend(f"      - {d}" for d in deps)
        elif kind == 2:                     # preconditions
            lines.append(f"    command: python3 -c 'print({i})'")
            lines.append("    preconditions:")
            lines.append('      - condition: "`date +%u`"')
            lines.append('        expected: "re:[1-7]"')
            lines.append('      - "test -d $DATA_DIR"')
        elif kind == 3:                     # retryPolicy + continueOn
            lines.append(f"    command: curl -sf http://localhost:8080/health?i={i}")
            lines.append("    retryPolicy:")
            lines.append("      limit: 3")
            lines.append("      intervalSec: 5")
            lines.append("    continueOn:")
            lines.append("      failure: true")
        elif kind == 4:                     # step env + output
            lines.append(f"    command: echo value-{i}")
            lines.append(f"    output: OUT_{i}")
            lines.append("    env:")
            lines.append(f"      - STEP_INDEX: \"{i}\"")
            lines.append("      - STEP_DIR: ${DATA_DIR}/part")
        elif kind == 5:                     # consumes an earlier output, with an id
            lines.append(f"    id: s{i}")
            lines.append(f"    command: echo ${{OUT_{i - 1}}} ${{OUT_{i - 1}.field}}")
            lines.append(f"    stdout: /tmp/bench-out-{i}.log")
        elif kind == 6:                     # multi-line script + dir
            lines.append("    dir: /tmp")
            lines.append("    script: |")
            lines.append(f"      echo start {i}")
            lines.append("      for n in 1 2 3; do echo $n; done")
        else:                               # repeatPolicy + signalOnStop + parallel-root style
            lines.append("    command: sleep 0")
            lines.append("    signalOnStop: SIGINT")
            lines.append("    repeatPolicy:")
            lines.append("      repeat: true")
            lines.append("      intervalSec: 1")
            lines.append("    depends: []")
    lines += [
        "handlerOn:",
        "  success:",
        "    command: echo all done",
        "  failure:",
        "    command: echo failed",
    ]
    return "\n".join(lines) + "\n"


def tiny_dag_yaml() -> str:
    return "steps:\n  - name: hello\n    command: echo hello\n"


def time_call(fn, warmup: int = WARMUP, iterations: int = ITERATIONS) -> list[float]:
    """Milliseconds per fn() call, after warm-up calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def time_load(text: str) -> list[float]:
    """Milliseconds per spec.load call (no evaluation), after warm-up calls."""
    return time_call(lambda: spec.load(text, spec.LoadOptions(location=LOCATION)))


def stage_timings(text: str) -> dict[str, float]:
    """Median ms of the stages under spec.load, to show where the time goes (best effort)."""
    import yaml
    stages: dict[str, float] = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    stages["yaml_compose_median_ms"] = statistics.median(
        time_call(lambda: yaml.compose(text, Loader=loader)))
    try:
        from dagu.yamlsource import Positions, load_documents
    except ImportError:     # the stage split is informative only; never fail the benchmark on it
        return stages
    stages["yaml_to_values_median_ms"] = statistics.median(
        time_call(lambda: load_documents(text, Positions(source="bench.yaml"), [])))
    return stages


def summarize(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"min_ms": ordered[0], "median_ms": statistics.median(ordered), "p95_ms": p95}


def run() -> dict:
    """Metric name -> value (ms), plus the sizes measured and whether the target is met."""
    big = big_dag_yaml()
    dag = spec.load(big, spec.LoadOptions(location=LOCATION))   # also proves the YAML is valid
    results: dict[str, float | int | bool] = {
        "steps_200.step_count": len(dag.steps),
        "steps_200.yaml_bytes": len(big.encode()),
    }
    for label, text in (("steps_200", big), ("steps_1", tiny_dag_yaml())):
        for metric, value in summarize(time_load(text)).items():
            results[f"{label}.{metric}"] = round(value, 3)
    for metric, value in stage_timings(big).items():
        results[f"steps_200.{metric}"] = round(value, 3)
    results["warmup"] = WARMUP
    results["iterations"] = ITERATIONS
    results["target_median_ms"] = TARGET_MEDIAN_MS
    results["target_met"] = results["steps_200.median_ms"] < TARGET_MEDIAN_MS
    return results


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:28} {value}")

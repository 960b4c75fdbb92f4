"""DAG definitions as the API shows them: DAG, DAGDetails, LocalDag, DAGFile and Pagination.

Every field of these shapes is present (empty string, 0 or [] when unset): a client never has to
tell a missing array from an empty one. Step objects are runrecord.step_json, as in run records."""
from __future__ import annotations

from dagu.model import DAG, Condition
from dagu.runrecord import step_json

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200


def conditions_json(conditions: tuple[Condition, ...]) -> list[dict]:
    """Condition objects: {condition, expected}."""
    return [{"condition": c.condition, "expected": c.expected} for c in conditions]


def dag_json(dag: DAG) -> dict:
    """The DAG shape of lists and search results."""
    return {
        "name": dag.name,
        "group": dag.group,
        "description": dag.description,
        "params": dag.params_list,
        "defaultParams": dag.default_params,
        "tags": list(dag.tags),
        "schedule": [{"expression": s.expression} for s in dag.schedule],
    }


def dag_details(dag: DAG) -> dict:
    """DAGDetails: the DAG shape plus env, steps, handlers, limits and preconditions."""
    out = dag_json(dag)
    out.update(
        env=[f"{k}={v}" for k, v in dag.env],
        logDir=dag.log_dir,
        handlerOn={kind: step_json(step) for kind, step in dag.handlers},
        steps=[step_json(s) for s in dag.steps],
        delay=dag.delay_sec,
        histRetentionDays=dag.hist_retention_days,
        preconditions=conditions_json(dag.preconditions),
        maxActiveDAGRuns=dag.max_active_runs,
        maxActiveSteps=dag.max_active_steps,
    )
    return out


def local_dags_json(dag: DAG | None) -> list[dict]:
    """LocalDag items (the other documents of a multi-document file), sorted by name."""
    if dag is None:
        return []
    return [{"name": d.name, "dag": dag_details(d), "errors": []}
            for d in sorted(dag.local_dags, key=lambda d: d.name)]


def dag_file_json(file_name: str, dag: DAG, latest: dict, suspended: bool) -> dict:
    """A DAGFile list item."""
    return {"fileName": file_name, "dag": dag_json(dag), "latestDAGRun": latest,
            "suspended": suspended, "errors": []}


def page_args(page: int | None, per_page: int | None) -> tuple[int, int]:
    """Dagu's clamping: page < 1 -> 1; perPage < 1 -> 50; perPage > 200 -> 200."""
    page = page if page is not None and page >= 1 else 1
    if per_page is None or per_page < 1:
        per_page = DEFAULT_PER_PAGE
    return page, min(per_page, MAX_PER_PAGE)


def pagination(total: int, page: int, per_page: int) -> dict:
    """Pagination with Dagu's formulas (totalPages is 1 when there is nothing)."""
    total_pages = max(total - 1, 0) // per_page + 1
    return {"totalRecords": total, "currentPage": page, "totalPages": total_pages,
            "nextPage": min(page + 1, total_pages), "prevPage": max(page - 1, 1)}

"""The step graph: dependency checks, topological order, and which steps are ready."""
from __future__ import annotations

import heapq

from collections.abc import Iterable, Mapping, Sequence


def unknown_dependencies(depends: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """(step, dependency) pairs naming a step that does not exist."""
    return [(name, dep) for name, deps in depends.items() for dep in deps if dep not in depends]


def find_cycle(depends: Mapping[str, Sequence[str]]) -> list[str]:
    """One dependency cycle as a list of step names (first repeated at the end), or []."""
    state: dict[str, int] = {}   # 1 = on the current path, 2 = done
    for start in depends:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                state[node] = 1
                path.append(node)
            deps = [d for d in depends.get(node, ()) if d in depends]
            if i < len(deps):
                stack.append((node, i + 1))
                nxt = deps[i]
                if state.get(nxt) == 1:
                    return path[path.index(nxt):] + [nxt]
                if not state.get(nxt):
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                path.pop()
    return []


def topological_order(names: Sequence[str], depends: Mapping[str, Sequence[str]]) -> list[str]:
    """Steps in an order that respects dependencies, ties kept in definition order (Kahn)."""
    position = {n: i for i, n in enumerate(names)}
    waiting = {n: sum(1 for d in depends.get(n, ()) if d in position) for n in names}
    dependents: dict[str, list[str]] = {n: [] for n in names}
    for n in names:
        for d in depends.get(n, ()):
            if d in dependents:
                dependents[d].append(n)
    ready = [(position[n], n) for n in names if waiting[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for m in dependents[n]:
            waiting[m] -= 1
            if waiting[m] == 0:
                heapq.heappush(ready, (position[m], m))
    return order


def descendants(roots: Iterable[str], depends: Mapping[str, Sequence[str]]) -> set[str]:
    """Every step reachable downstream from roots (roots included)."""
    children: dict[str, list[str]] = {}
    for n, deps in depends.items():
        for d in deps:
            children.setdefault(d, []).append(n)
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(children.get(n, ()))
    return seen


def ancestors(name: str, depends: Mapping[str, Sequence[str]]) -> set[str]:
    """Every step upstream of name (its dependencies, transitively), name excluded."""
    seen: set[str] = set()
    todo = list(depends.get(name, ()))
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(depends.get(n, ()))
    return seen

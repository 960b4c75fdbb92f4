"""Tests for dagu.graph: dependency checks, cycles, topological order and descendants."""

from __future__ import annotations

import random

import pytest

from dagu.graph import descendants, find_cycle, topological_order, unknown_dependencies

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


# -- unknown_dependencies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "depends, expected",
    [
        pytest.param({}, [], id="empty"),
        pytest.param(DIAMOND, [], id="all-known"),
        pytest.param({"a": ["x"]}, [("a", "x")], id="one-unknown"),
        pytest.param({"a": ["x"], "b": ["a", "y", "x"]}, [("a", "x"), ("b", "y"), ("b", "x")],
                     id="every-pair-in-definition-order"),
        pytest.param({"a": ["A"]}, [("a", "A")], id="case-sensitive"),
    ],
)
def test_unknown_dependencies(depends: dict[str, list[str]], expected: list[tuple[str, str]]) -> None:
    assert unknown_dependencies(depends) == expected


# -- find_cycle -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "depends, expected",
    [
        pytest.param({}, [], id="empty"),
        pytest.param({"a": []}, [], id="single"),
        pytest.param(DIAMOND, [], id="diamond-is-acyclic"),
        pytest.param({"a": [], "b": ["a"], "c": ["a", "b"], "d": ["b", "c"]}, [], id="dense-dag"),
        pytest.param({"a": ["x"], "b": ["a"]}, [], id="unknown-deps-ignored"),
        pytest.param({"a": ["a"]}, ["a", "a"], id="self-loop"),
        pytest.param({"a": ["b"], "b": ["a"]}, ["a", "b", "a"], id="two-cycle"),
        pytest.param({"a": ["c"], "b": ["a"], "c": ["b"], "d": []}, ["a", "c", "b", "a"], id="three-cycle"),
        pytest.param({"x": [], "a": ["b"], "b": ["c"], "c": ["b"]}, ["b", "c", "b"],
                     id="cycle-not-through-first-step"),
    ],
)
def test_find_cycle(depends: dict[str, list[str]], expected: list[str]) -> None:
    assert find_cycle(depends) == expected


def assert_is_cycle(depends: dict[str, list[str]], cycle: list[str]) -> None:
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for step, dep in zip(cycle, cycle[1:]):
        assert dep in depends[step], f"{step} does not depend on {dep}"


@pytest.mark.parametrize("seed", range(20))
def test_find_cycle_matches_topological_order_on_random_graphs(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"s{i}" for i in range(12)]
    depends = {n: rng.sample(names, rng.randint(0, 2)) for n in names}
    cycle = find_cycle(depends)
    order = topological_order(names, depends)
    if cycle:
        assert_is_cycle(depends, cycle)
        assert len(order) < len(names)          # Kahn cannot place the steps on a cycle
    else:
        assert len(order) == len(names)


def test_find_cycle_handles_long_chains_without_recursion() -> None:
    names = [f"s{i}" for i in range(5000)]
    depends = {n: ([names[i - 1]] if i else []) for i, n in enumerate(names)}
    assert find_cycle(depends) == []
    depends[names[0]] = [names[-1]]
    cycle = find_cycle(depends)
    assert len(cycle) == 5001
    assert_is_cycle(depends, cycle)


# -- topological_order ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "names, depends, expected",
    [
        pytest.param([], {}, [], id="empty"),
        pytest.param(["c", "b", "a"], {"c": [], "b": [], "a": []}, ["c", "b", "a"],
                     id="independent-steps-in-definition-order"),
        pytest.param(["a", "b", "c", "d"], DIAMOND, ["a", "b", "c", "d"], id="diamond"),
        pytest.param(["d", "c", "b", "a"], DIAMOND, ["a", "c", "b", "d"], id="diamond-defined-backwards"),
        pytest.param(["a", "b", "c", "d"], {"a": ["d"], "b": [], "c": ["b"], "d": []}, ["b", "c", "d", "a"],
                     id="ready-ties-by-definition-position"),
        pytest.param(["a", "b"], {"a": ["zz"], "b": ["a"]}, ["a", "b"], id="unknown-deps-ignored"),
        pytest.param(["a", "b", "c"], {"a": ["b"], "b": ["a"], "c": []}, ["c"], id="cycle-steps-left-out"),
        pytest.param(["a", "b"], {"b": ["a"]}, ["a", "b"], id="missing-depends-entry-means-none"),
    ],
)
def test_topological_order(names: list[str], depends: dict[str, list[str]], expected: list[str]) -> None:
    assert topological_order(names, depends) == expected


@pytest.mark.parametrize("seed", range(10))
def test_topological_order_respects_every_edge(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"s{i}" for i in range(30)]
    rng.shuffle(names)
    # Only depend on earlier names in a hidden order: always acyclic.
    hidden = list(names)
    rng.shuffle(hidden)
    depends = {n: rng.sample(hidden[:i], min(i, rng.randint(0, 3))) for i, n in enumerate(hidden)}
    order = topological_order(names, depends)
    assert sorted(order) == sorted(names)
    where = {n: i for i, n in enumerate(order)}
    for step, deps in depends.items():
        for dep in deps:
            assert where[dep] < where[step]


# -- descendants ----------------------------------------------------------------------------------

TREE = {"a": [], "b": ["a"], "c": ["b"], "d": [], "e": ["d", "c"], "f": ["d"]}


@pytest.mark.parametrize(
    "roots, depends, expected",
    [
        pytest.param([], TREE, set(), id="no-roots"),
        pytest.param(["a"], TREE, {"a", "b", "c", "e"}, id="transitive-and-root-included"),
        pytest.param(["c"], TREE, {"c", "e"}, id="from-the-middle"),
        pytest.param(["e"], TREE, {"e"}, id="leaf"),
        pytest.param(["d"], TREE, {"d", "e", "f"}, id="fan-out"),
        pytest.param(["a", "d"], TREE, {"a", "b", "c", "d", "e", "f"}, id="several-roots"),
        pytest.param(["b", "c"], TREE, {"b", "c", "e"}, id="root-that-is-also-a-descendant"),
        pytest.param(["a"], DIAMOND, {"a", "b", "c", "d"}, id="diamond-counted-once"),
        pytest.param(["a"], {"a": ["b"], "b": ["a"]}, {"a", "b"}, id="cycle-terminates"),
    ],
)
def test_descendants(roots: list[str], depends: dict[str, list[str]], expected: set[str]) -> None:
    assert descendants(roots, depends) == expected

"""Tests for dagu.params: the parameter-string grammar, YAML forms, evaluation, overrides (§3.5)."""

from __future__ import annotations

import pytest

from dagu.expand import ExpandError
from dagu.params import (
    ParamError,
    ParamToken,
    override,
    parse_api_params,
    parse_param_string,
    resolve,
    scalar_text,
    serialize,
    to_param_string,
    tokens_from_args,
    tokens_from_yaml,
)


def fake_runner(outputs: dict[str, str]):
    """A backtick runner answering from a table; records the commands it was given."""
    calls: list[str] = []

    def run(cmd: str) -> str:
        calls.append(cmd)
        if cmd not in outputs:
            raise ExpandError(f"command `{cmd}` exited with 1")
        return outputs[cmd]

    run.calls = calls  # type: ignore[attr-defined]
    return run


def pairs(tokens: list[ParamToken]) -> list[tuple[str, str]]:
    return [(t.name, t.value) for t in tokens]


# -- parse_param_string ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("", [], id="empty"),
        pytest.param("   ", [], id="blank"),
        pytest.param("a", [("", "a")], id="one-positional"),
        pytest.param("a b  c", [("", "a"), ("", "b"), ("", "c")], id="positionals-split-on-space"),
        pytest.param("K=v", [("K", "v")], id="named"),
        pytest.param("K=v pos L=w", [("K", "v"), ("", "pos"), ("L", "w")], id="mixed-in-order"),
        pytest.param('x="a b c" y="d e f"', [("x", '"a b c"'), ("y", '"d e f"')], id="quoted-named"),
        pytest.param('"two words"', [("", '"two words"')], id="quoted-positional"),
        pytest.param(r'A="say \"hi\"" B', [("A", r'"say \"hi\""'), ("", "B")],
                     id="escaped-quotes-stay-inside-the-token"),
        pytest.param("P3=`/bin/echo BAR`", [("P3", "`/bin/echo BAR`")], id="backtick-value-with-space"),
        pytest.param("TEST_PARAM $1", [("", "TEST_PARAM"), ("", "$1")], id="dollar-ref-is-a-bare-word"),
        pytest.param("a=b=c", [("a", "b=c")], id="only-first-equals-names"),
        pytest.param("=x", [("", "=x")], id="empty-name-is-positional"),
        pytest.param('K=""', [("K", '""')], id="empty-quoted-value"),
        pytest.param("first P1=foo P2=${A001} P3=`/bin/echo BAR` X=bar Y=${P1} Z=\"A B C\"",
                     [("", "first"), ("P1", "foo"), ("P2", "${A001}"), ("P3", "`/bin/echo BAR`"),
                      ("X", "bar"), ("Y", "${P1}"), ("Z", '"A B C"')],
                     id="dagu-builder-example"),
        # Dagu's regexp: a backtick value is `[^"]*` up to the LAST backtick before a quote.
        pytest.param("A=`c` B=x`c`", [("A", "`c` B=x`c`")], id="backtick-value-is-greedy-like-dagu"),
    ],
)
def test_parse_param_string(text: str, expected: list[tuple[str, str]]) -> None:
    assert pairs(parse_param_string(text)) == expected


def test_parse_param_string_tokens_are_not_evaluate_all() -> None:
    assert all(not t.evaluate_all for t in parse_param_string("A=1 b `c`"))


# -- tokens_from_yaml -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param(None, [], id="null"),
        pytest.param("", [], id="empty-string"),
        pytest.param('a K="x y"', [("", "a", False), ("K", '"x y"', False)], id="string"),
        pytest.param(["a b", "K=v"], [("", "a", False), ("", "b", False), ("K", "v", False)],
                     id="list-of-strings-each-parsed"),
        pytest.param([{"K": "v"}, "p", {"N": 1}], [("K", "v", True), ("", "p", False), ("N", "1", True)],
                     id="list-with-single-key-maps"),
        pytest.param([3, True, 1.0], [("", "3", False), ("", "true", False), ("", "1", False)],
                     id="list-of-scalars"),
        pytest.param({"A": "x y", "B": 2, "C": 2.5, "D": False, "E": None},
                     [("A", "x y", True), ("B", "2", True), ("C", "2.5", True), ("D", "false", True),
                      ("E", "", True)],
                     id="map-in-document-order"),
        pytest.param({"CMD": "`date`"}, [("CMD", "`date`", True)], id="map-values-kept-raw"),
        pytest.param(5, [("", "5", False)], id="scalar-number"),
    ],
)
def test_tokens_from_yaml(value: object, expected: list[tuple[str, str, bool]]) -> None:
    assert [(t.name, t.value, t.evaluate_all) for t in tokens_from_yaml(value)] == expected


@pytest.mark.parametrize(
    "value, message",
    [
        pytest.param([{"a": 1, "b": 2}], "single-key map", id="multi-key-map-in-list"),
        pytest.param([{}], "single-key map", id="empty-map-in-list"),
        pytest.param([[1, 2]], "invalid params list item", id="nested-list"),
        pytest.param([None], "invalid params list item", id="null-in-list"),
        pytest.param(object(), "params must be a string, a list or a map", id="other-type"),
    ],
)
def test_tokens_from_yaml_errors(value: object, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        tokens_from_yaml(value)


@pytest.mark.parametrize(
    "args, expected",
    [
        pytest.param([], [], id="none"),
        pytest.param(["a b", "K=v w"], [("", "a b"), ("K", "v w")], id="each-word-one-param-spaces-kept"),
        pytest.param(["K="], [("K", "")], id="empty-value"),
        pytest.param(['"q"=x'], [("", '"q"=x')], id="quoted-name-is-positional"),
    ],
)
def test_tokens_from_args(args: list[str], expected: list[tuple[str, str]]) -> None:
    assert pairs(tokens_from_args(args)) == expected


@pytest.mark.parametrize(
    "value, expected",
    [(None, ""), (True, "true"), (False, "false"), (3, "3"), (3.0, "3"), (2.5, "2.5"), ("s", "s")],
)
def test_scalar_text_prints_like_go(value: object, expected: str) -> None:
    assert scalar_text(value) == expected


# -- resolve --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, environ, outputs, expected",
    [
        pytest.param("TEST_PARAM $1", {}, {}, [("1", "TEST_PARAM"), ("2", "TEST_PARAM")],
                     id="positional-refers-to-earlier-positional"),
        pytest.param('x="a b c" y="d e f"', {}, {}, [("x", "a b c"), ("y", "d e f")],
                     id="quotes-stripped"),
        pytest.param("first P1=foo P2=${A001} P3=`/bin/echo BAR` X=bar Y=${P1} Z=\"A B C\"",
                     {"A001": "TEXT"}, {"/bin/echo BAR": "BAR"},
                     [("1", "first"), ("P1", "foo"), ("P2", "TEXT"), ("P3", "BAR"), ("X", "bar"),
                      ("Y", "foo"), ("Z", "A B C")],
                     id="dagu-builder-example"),
        pytest.param(r'A="say \"hi\""', {}, {}, [("A", 'say "hi"')], id="escaped-quotes-unescaped"),
        pytest.param('A="`cmd`"', {}, {"cmd": "out"}, [("A", "out")], id="backticks-inside-quotes-run"),
        pytest.param('A=pre`cmd`', {}, {}, [("A", "pre`cmd`")], id="bare-word-backticks-not-run"),
        pytest.param("A=$UNSET B=${UNSET}x", {}, {}, [("A", ""), ("B", "x")], id="unknown-env-empty"),
        pytest.param("A=$HOME", {"HOME": "/h"}, {}, [("A", "/h")], id="environ-expanded"),
        pytest.param("K=v $1", {}, {}, [("K", "v"), ("2", "K=v")],
                     id="positional-env-of-named-param-is-name-equals-value"),
        pytest.param("a b c", {}, {}, [("1", "a"), ("2", "b"), ("3", "c")], id="positional-indexes"),
        pytest.param("K=v p", {}, {}, [("K", "v"), ("2", "p")], id="index-counts-all-params"),
    ],
)
def test_resolve_dagu_examples(text: str, environ: dict[str, str], outputs: dict[str, str],
                               expected: list[tuple[str, str]]) -> None:
    run = fake_runner(outputs)
    assert resolve(parse_param_string(text), dict(environ), run) == expected


def test_resolve_exports_params_into_environ() -> None:
    environ = {"A001": "TEXT"}
    resolve(parse_param_string("first P1=foo P2=${A001}"), environ, fake_runner({}))
    assert environ == {"A001": "TEXT", "1": "first", "2": "P1=foo", "P1": "foo", "3": "P2=TEXT", "P2": "TEXT"}


def test_resolve_map_values_evaluate_backticks_anywhere() -> None:
    run = fake_runner({"date": "today"})
    tokens = tokens_from_yaml({"D": "on `date`", "E": "$D!"})
    assert resolve(tokens, {}, run) == [("D", "on today"), ("E", "on today!")]
    assert run.calls == ["date"]


def test_resolve_without_environ_does_not_evaluate() -> None:
    run = fake_runner({})
    tokens = parse_param_string('A="$HOME" B=`cmd` C=${A}')
    assert resolve(tokens, None, run) == [("A", "$HOME"), ("B", "`cmd`"), ("C", "${A}")]
    assert run.calls == []


def test_resolve_without_runner_keeps_backticks_but_expands_env() -> None:
    tokens = parse_param_string('A="`cmd` $X"')
    assert resolve(tokens, {"X": "x"}, None) == [("A", "`cmd` x")]


def test_resolve_failing_command_is_invalid_parameter_value() -> None:
    with pytest.raises(ParamError, match="invalid parameter value"):
        resolve(parse_param_string("P=`false`"), {}, fake_runner({}))


# -- override -------------------------------------------------------------------------------------

BASE = [("FOO", "foo"), ("BAR", "bar"), ("BAZ", "baz")]


@pytest.mark.parametrize(
    "params, text, expected",
    [
        pytest.param(BASE, "FOO=X BAZ=Y", [("FOO", "X"), ("BAR", "bar"), ("BAZ", "Y")],
                     id="named-replace-dagu-example"),
        pytest.param(BASE, "NEW=n", BASE + [("NEW", "n")], id="named-append"),
        pytest.param(BASE, "", BASE, id="no-overrides"),
        pytest.param([("1", "a"), ("2", "b")], "x", [("1", "x"), ("2", "b")], id="positional-replace-first"),
        pytest.param([("1", "a"), ("2", "b")], "x y", [("1", "x"), ("2", "y")], id="positional-replace-both"),
        pytest.param([("1", "a")], "x y z", [("1", "x"), ("2", "y"), ("3", "z")], id="positional-append"),
        pytest.param([], "x K=v", [("1", "x"), ("K", "v")], id="onto-nothing"),
        pytest.param([("1", "a"), ("K", "k")], "K=new", [("1", "a"), ("K", "new")], id="named-keeps-position"),
        pytest.param([("1", "a"), ("N", "x"), ("3", "b")], "p q",
                     [("1", "p"), ("N", "x"), ("3", "b"), ("2", "q")],
                     id="positional-matched-by-index-name-keeps-named-params"),
    ],
)
def test_override(params: list[tuple[str, str]], text: str, expected: list[tuple[str, str]]) -> None:
    tokens = parse_param_string(text)
    overrides = resolve(tokens, None, None)
    assert override(params, overrides, [not t.name for t in tokens]) == expected


def test_override_does_not_mutate_its_input() -> None:
    params = list(BASE)
    override(params, [("FOO", "X")], [False])
    assert params == BASE


# -- serialize / to_param_string ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("", "", id="empty"),
        pytest.param("A=1", 'A="1"', id="named"),
        pytest.param("pos", '"pos"', id="positional"),
        pytest.param('x="a b c" y="d e f"', 'x="a b c" y="d e f"', id="quoted-values"),
        pytest.param(r'A="say \"hi\""', r'A="say \"hi\""', id="inner-quotes-escaped"),
        pytest.param("A=`cmd` $1", 'A="`cmd`" "$1"', id="raw-not-evaluated"),
    ],
)
def test_serialize_default_params(text: str, expected: str) -> None:
    assert serialize(parse_param_string(text)) == expected


@pytest.mark.parametrize(
    "params",
    [
        [("A", "1")],
        [("A", "a b"), ("B", 'q "x"')],
        [("1", "p"), ("K", "")],
    ],
)
def test_to_param_string_round_trips(params: list[tuple[str, str]]) -> None:
    text = to_param_string(params)
    assert resolve(parse_param_string(text), None, None) == params


# -- parse_api_params -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param(None, [], id="none"),
        pytest.param("", [], id="empty-string"),
        pytest.param('NAME="v" positional', [("NAME", '"v"'), ("", "positional")], id="param-string"),
        pytest.param('{"env": "production"}', [("env", "production")], id="json-object-in-string"),
        pytest.param('  {"n": 2, "b": true}  ', [("n", "2"), ("b", "true")], id="json-object-with-scalars"),
        pytest.param({"env": "production", "n": 3}, [("env", "production"), ("n", "3")], id="object"),
        pytest.param('"p3 p4"', [("", "p3"), ("", "p4")], id="literal-quotes-make-two-positionals"),
        pytest.param('"p3"', [("", "p3")], id="literal-quotes-one-word"),
        pytest.param("{not json", [("", "{not"), ("", "json")], id="broken-json-is-a-param-string"),
        pytest.param("[1]", [("", "[1]")], id="json-array-is-a-param-string"),
        pytest.param('A="x" "y"', [("A", '"x"'), ("", '"y"')], id="quoted-param-string-kept"),
    ],
)
def test_parse_api_params(value: object, expected: list[tuple[str, str]]) -> None:
    assert pairs(parse_api_params(value)) == expected


@pytest.mark.parametrize("value", [5, ["a"], True])
def test_parse_api_params_rejects_other_types(value: object) -> None:
    with pytest.raises(ParamError):
        parse_api_params(value)

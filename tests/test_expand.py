"""Tests for dagu.expand: Dagu's string evaluation pipeline (reference §3.7)."""

from __future__ import annotations

import pytest

from dagu.expand import (
    ExpandError,
    evaluate,
    expand_env,
    expand_json_refs,
    expand_plain_refs,
    format_value,
    json_path,
    merge_layers,
    substitute_commands,
)


def fake_runner(outputs: dict[str, str]):
    """A backtick runner that answers from a table and records every command it was given."""
    calls: list[str] = []

    def run(cmd: str) -> str:
        calls.append(cmd)
        if cmd not in outputs:
            raise ExpandError(f"command `{cmd}` failed")
        return outputs[cmd]

    run.calls = calls  # type: ignore[attr-defined]
    return run


# -- expand_env: Go's os.ExpandEnv ---------------------------------------------------------------

ENVIRON = {
    "HOME": "/home/u",
    "A": "1",
    "A_B": "ab",
    "B": "two",
    "1": "first",
    "12": "twelve",
    "$": "pid",
    "@": "all",
    "#": "count",
    "-": "dash",
    "?": "status",
}


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("$HOME/x", "/home/u/x", id="dollar-name"),
        pytest.param("${HOME}/x", "/home/u/x", id="braced-name"),
        pytest.param("${A}${B}", "1two", id="adjacent-braced"),
        pytest.param("$A_B", "ab", id="underscore-is-part-of-name"),
        pytest.param("$A.B", "1.B", id="dot-ends-name"),
        pytest.param("$B-x", "two-x", id="dash-ends-name"),
        pytest.param("$1", "first", id="positional"),
        pytest.param("${1}", "first", id="braced-positional"),
        pytest.param("$12", "first2", id="unbraced-positional-is-one-digit"),
        pytest.param("${12}", "twelve", id="braced-multi-digit"),
        pytest.param("$$", "pid", id="special-dollar"),
        pytest.param("$@ $# $- $?", "all count dash status", id="special-vars"),
        pytest.param("${#}", "count", id="braced-special"),
        pytest.param("$*", "", id="unknown-special-is-empty"),
        pytest.param("x$UNKNOWN.y", "x.y", id="unknown-becomes-empty"),
        pytest.param("${UNKNOWN}", "", id="unknown-braced-becomes-empty"),
        pytest.param("a${}b", "ab", id="empty-braces-dropped"),
        pytest.param("a${", "a", id="unterminated-brace-at-end-dropped"),
        pytest.param("${A", "A", id="unterminated-brace-eats-dollar-brace"),
        pytest.param("cost $", "cost $", id="lone-trailing-dollar-kept"),
        pytest.param("$ x", "$ x", id="dollar-before-space-kept"),
        pytest.param("100%$/", "100%$/", id="dollar-before-punctuation-kept"),
        pytest.param("no dollars", "no dollars", id="plain-text-untouched"),
        pytest.param("", "", id="empty"),
        pytest.param("$HOME$HOME", "/home/u/home/u", id="repeated"),
    ],
)
def test_expand_env_follows_go_os_expandenv(text: str, expected: str) -> None:
    assert expand_env(text, ENVIRON) == expected


def test_expand_env_does_not_read_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGU_TEST_ONLY_IN_OS", "leak")
    assert expand_env("[$DAGU_TEST_ONLY_IN_OS]", {}) == "[]"


# -- expand_plain_refs ---------------------------------------------------------------------------

VARS = {"A": "1", "B": "two", "FOO": "BAR", "1": "p1"}


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("${FOO}", "BAR", id="braced"),
        pytest.param("$FOO", "BAR", id="short"),
        pytest.param("prefix $FOO suffix", "prefix BAR suffix", id="in-middle"),
        pytest.param("$A ${B} $A", "1 two 1", id="several"),
        pytest.param("$1 ${1}", "p1 p1", id="positional-names"),
        pytest.param("$FOO_", "$FOO_", id="longer-name-not-defined-kept"),
        pytest.param("$FOO1", "$FOO1", id="name-with-digit-suffix-kept"),
        pytest.param("${MISSING} $MISSING", "${MISSING} $MISSING", id="unknown-left-alone"),
        pytest.param("${FOO${A}}", "${FOO${A}}", id="nested-not-supported"),
        pytest.param("echo '$FOO'", "echo '$FOO'", id="single-quoted-short-left-alone"),
        pytest.param("echo '${FOO}'", "echo '${FOO}'", id="single-quoted-braced-left-alone"),
        pytest.param("echo '$FOO bar'", "echo '$FOO bar'", id="anywhere-inside-single-quotes-left-alone"),
        pytest.param("'$A $B'", "'$A $B'", id="two-refs-inside-one-quoted-span-left-alone"),
        pytest.param("echo \"it's $FOO\"", "echo \"it's BAR\"", id="apostrophe-inside-double-quotes-is-literal"),
        pytest.param("# it's\necho \"$A\" '$B'", "# it's\necho \"$A\" 'two'",
                     id="span-runs-to-the-next-quote-as-dagu-reads-it"),
        pytest.param("echo \\'$A", "echo \\'1", id="escaped-quote-opens-no-span"),
        pytest.param('echo "$FOO"', 'echo "BAR"', id="double-quoted-substituted"),
        pytest.param("no refs", "no refs", id="no-dollar"),
    ],
)
def test_expand_plain_refs(text: str, expected: str) -> None:
    assert expand_plain_refs(text, VARS) == expected


def test_expand_plain_refs_does_not_expand_values_again() -> None:
    assert expand_plain_refs("$X", {"X": "$Y", "Y": "deep"}) == "$Y"


# -- expand_json_refs ----------------------------------------------------------------------------

OUT_JSON = (
    '{"a": {"b": "deep"}, "list": [10, 20, {"k": "v"}], "port": 8080, "ratio": 1.5,'
    ' "whole": 3.0, "neg": -2, "flag": true, "off": false, "nothing": null,'
    ' "obj": {"k": [1, 2]}, "str": "text with spaces"}'
)
JSON_VARS = {"OUT": OUT_JSON, "PLAIN": "not json", "ARR": "[1, 2, 3]", "BROKEN": '{"bar":'}
STEP_PROPS = {"s1": {"stdout": "/logs/s1.out", "stderr": "/logs/s1.err", "exit_code": "0"}}


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("${OUT.a.b}", "deep", id="nested-key"),
        pytest.param("$OUT.a.b", "deep", id="unbraced-nested-key"),
        pytest.param("${OUT.list[0]}", "10", id="array-index"),
        pytest.param("${OUT.list[2].k}", "v", id="index-then-key"),
        pytest.param("${OUT.list.[1]}", "20", id="jq-dot-bracket-index"),
        pytest.param("${ARR.[2]}", "3", id="top-level-array"),
        pytest.param("${OUT.port}", "8080", id="integer-without-decimal"),
        pytest.param("${OUT.whole}", "3", id="integral-float-without-dot-zero"),
        pytest.param("${OUT.neg}", "-2", id="negative-number"),
        pytest.param("${OUT.ratio}", "1.5", id="fraction-kept"),
        pytest.param("${OUT.flag} ${OUT.off}", "true false", id="booleans"),
        pytest.param("${OUT.nothing}", "<nil>", id="null-printed-as-go-nil"),
        pytest.param("${OUT.obj}", '{"k":[1,2]}', id="object-as-compact-json"),
        pytest.param("${OUT.str}", "text with spaces", id="string-without-quotes"),
        pytest.param("port=${OUT.port}!", "port=8080!", id="embedded-in-text"),
        pytest.param("${OUT.a.b} and $OUT.port", "deep and 8080", id="several-refs"),
        pytest.param("${OUT.missing}", "${OUT.missing}", id="missing-key-left-unchanged"),
        pytest.param("${OUT.list[9]}", "${OUT.list[9]}", id="index-out-of-range-left-unchanged"),
        pytest.param("${OUT.str.x}", "${OUT.str.x}", id="path-through-string-left-unchanged"),
        pytest.param("${PLAIN.x}", "${PLAIN.x}", id="non-json-left-unchanged"),
        pytest.param("${BROKEN.bar}", "${BROKEN.bar}", id="invalid-json-left-unchanged"),
        pytest.param("${NOPE.x}", "${NOPE.x}", id="unknown-name-left-unchanged"),
        pytest.param("${OUT}", "${OUT}", id="plain-ref-not-a-json-ref"),
        pytest.param("${s1.stdout}", "/logs/s1.out", id="step-stdout-path"),
        pytest.param("${s1.stderr}", "/logs/s1.err", id="step-stderr-path"),
        pytest.param("${s1.exit_code}", "0", id="step-exit-code"),
        pytest.param("$s1.stdout", "/logs/s1.out", id="unbraced-step-property"),
        pytest.param("${s1.pid}", "${s1.pid}", id="unknown-step-property-left-unchanged"),
        pytest.param("${s2.stdout}", "${s2.stdout}", id="unknown-step-left-unchanged"),
    ],
)
def test_expand_json_refs(text: str, expected: str) -> None:
    assert expand_json_refs(text, JSON_VARS, STEP_PROPS) == expected


def test_json_ref_wins_over_step_property_of_the_same_name() -> None:
    variables = {"s1": '{"stdout": "from-json"}'}
    assert expand_json_refs("${s1.stdout}", variables, STEP_PROPS) == "from-json"


def test_step_property_used_when_variable_is_not_json() -> None:
    variables = {"s1": "plain output"}
    assert expand_json_refs("${s1.stdout}", variables, STEP_PROPS) == "/logs/s1.out"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("s", "s"),
        (True, "true"),
        (False, "false"),
        (None, "<nil>"),
        (8080, "8080"),
        (8080.0, "8080"),
        (1.5, "1.5"),
        (-0.25, "-0.25"),
        ([1, "a"], '[1,"a"]'),
        ({"k": None}, '{"k":null}'),
    ],
)
def test_format_value_prints_like_dagu(value: object, expected: str) -> None:
    assert format_value(value) == expected


MISSING = json_path({}, ".absent")   # the module's "not found" sentinel


@pytest.mark.parametrize(
    "doc, path, expected",
    [
        pytest.param({"a": {"b": 1}}, ".a.b", 1, id="keys"),
        pytest.param({"a": [5, 6]}, ".a[1]", 6, id="key-then-index"),
        pytest.param([7, 8], ".[0]", 7, id="top-level-index"),
        pytest.param({"a": None}, ".a", None, id="present-null-is-found"),
        pytest.param({"a": 1}, ".b", MISSING, id="absent-key"),
        pytest.param({"a": [1]}, ".a[3]", MISSING, id="index-out-of-range"),
        pytest.param({"a": 1}, ".a.b", MISSING, id="key-into-number"),
        pytest.param({"a": 1}, "a", MISSING, id="path-without-leading-dot"),
    ],
)
def test_json_path(doc: object, path: str, expected: object) -> None:
    found = json_path(doc, path)
    if expected is None or expected is MISSING:
        assert found is expected
    else:
        assert found == expected


# -- substitute_commands -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, outputs, expected, commands",
    [
        pytest.param("`date`", {"date": "today"}, "today", ["date"], id="whole-string"),
        pytest.param("at `date`!", {"date": "today"}, "at today!", ["date"], id="embedded"),
        pytest.param("`a` and `b`", {"a": "1", "b": "2"}, "1 and 2", ["a", "b"], id="two-commands-in-order"),
        pytest.param(r"`echo \`x\``", {"echo `x`": "x"}, "x", ["echo `x`"], id="escaped-backtick-inside"),
        pytest.param("``", {"": ""}, "", [""], id="empty-command"),
        pytest.param("no backticks $X", {}, "no backticks $X", [], id="no-backticks-runner-not-called"),
    ],
)
def test_substitute_commands_uses_the_injected_runner(
        text: str, outputs: dict[str, str], expected: str, commands: list[str]) -> None:
    run = fake_runner(outputs)
    assert substitute_commands(text, run) == expected
    assert run.calls == commands


def test_substitute_commands_propagates_runner_failure() -> None:
    with pytest.raises(ExpandError):
        substitute_commands("x `false` y", fake_runner({}))


# -- merge_layers / evaluate ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "layers, expected",
    [
        pytest.param([], {}, id="no-layers"),
        pytest.param([{"X": "1"}], {"X": "1"}, id="one-layer"),
        pytest.param([{"X": "first"}, {"X": "second", "Y": "y"}], {"X": "first", "Y": "y"},
                     id="first-layer-wins"),
        pytest.param([{}, {"X": "2"}, {"X": "3"}], {"X": "2"}, id="first-defining-layer-wins"),
    ],
)
def test_merge_layers_first_layer_wins(layers: list[dict[str, str]], expected: dict[str, str]) -> None:
    assert merge_layers(layers) == expected


@pytest.mark.parametrize(
    "text, layers, expected",
    [
        pytest.param("$X", [{"X": "run"}, {"X": "step"}, {"X": "output"}], "run", id="first-layer-wins"),
        pytest.param("$Y", [{"X": "run"}, {"Y": "step"}], "step", id="later-layer-fills-gaps"),
        pytest.param("${OUT.a}", [{"OUT": '{"a": 1}'}, {"OUT": '{"a": 2}'}], "1",
                     id="json-ref-from-first-layer"),
        pytest.param("$X $NOPE", [{"X": "x"}], "x $NOPE", id="unknown-kept-without-environ"),
        pytest.param("$X", [], "$X", id="no-layers-nothing-changes"),
    ],
)
def test_evaluate_layer_precedence(text: str, layers: list[dict[str, str]], expected: str) -> None:
    assert evaluate(text, layers) == expected


def test_evaluate_runs_every_stage_in_order() -> None:
    run = fake_runner({"cmd $Y": "out"})
    result = evaluate(
        "${OUT.a} $X `cmd $Y` $HOME $NOPE",
        [{"OUT": '{"a": "json"}', "X": "var"}],
        run_command=run,
        environ={"HOME": "/h", "Y": "env-y"},
    )
    # The runner sees the command before environment expansion; unknown env names become empty.
    assert result == "json var out /h "
    assert run.calls == ["cmd $Y"]


def test_evaluate_expands_env_inside_substituted_values() -> None:
    # Stage 4 runs over the whole string, so a variable whose value holds $HOME gets expanded.
    assert evaluate("$X", [{"X": "$HOME/bin"}], environ={"HOME": "/h"}) == "/h/bin"


def test_evaluate_runs_commands_that_variables_produce() -> None:
    run = fake_runner({"whoami": "me"})
    assert evaluate("$X", [{"X": "`whoami`"}], run_command=run) == "me"


def test_evaluate_without_runner_keeps_backticks() -> None:
    assert evaluate("`date` $X", [{"X": "1"}]) == "`date` 1"


def test_evaluate_without_environ_keeps_unknown_refs() -> None:
    assert evaluate("$HOME", [{"X": "1"}]) == "$HOME"


def test_evaluate_step_props_without_layers() -> None:
    assert evaluate("cat ${s1.stdout}", [], step_props=STEP_PROPS) == "cat /logs/s1.out"


def test_evaluate_single_quoted_ref_left_for_the_shell() -> None:
    assert evaluate("echo '$X' $X", [{"X": "v"}]) == "echo '$X' v"


def test_evaluate_runner_failure_raises() -> None:
    with pytest.raises(ExpandError):
        evaluate("`boom`", [], run_command=fake_runner({}))

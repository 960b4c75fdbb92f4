"""Tests for dagu.jq: the jq language subset behind Dagu's `jq` step executor (Dagu runs gojq)."""

from __future__ import annotations

import json
import math

import pytest

from dagu import jq


def canon(value: object) -> str:
    """JSON text that tells true from 1 and treats 1.0 as 1 (jq has one number type)."""
    def norm(v):
        if isinstance(v, float) and math.isfinite(v) and v == int(v):
            return int(v)
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        return v
    return json.dumps(norm(value), sort_keys=True)


def outputs(query: str, input_json: str = "null") -> list:
    return jq.compile(query).run(json.loads(input_json))


def check(query: str, input_json: str, expected: list) -> None:
    assert canon(outputs(query, input_json)) == canon(expected), query


# -- paths: identity, fields, indexes, slices, iteration, recursion ---------------------------

@pytest.mark.parametrize("query,input_json,expected", [
    (".", '{"a": 1}', [{"a": 1}]),
    (".a", '{"a": 1}', [1]),
    (".a.b", '{"a": {"b": "x"}}', ["x"]),
    (".missing", '{"a": 1}', [None]),
    (".a.b", "null", [None]),
    ('."quoted key"', '{"quoted key": 2}', [2]),
    ('.["key"]', '{"key": 3}', [3]),
    ('.a."b c"', '{"a": {"b c": 4}}', [4]),
    (".a?", "[1]", []),
    (".a?", '{"a": 5}', [5]),
    (".[0]", "[10, 20, 30]", [10]),
    (".[-1]", "[10, 20, 30]", [30]),
    (".[5]", "[10, 20, 30]", [None]),
    (".[1.7]", "[10, 20, 30]", [20]),
    (".[1:3]", "[0, 1, 2, 3, 4]", [[1, 2]]),
    (".[:2]", "[0, 1, 2, 3, 4]", [[0, 1]]),
    (".[-2:]", "[0, 1, 2, 3, 4]", [[3, 4]]),
    (".[3:1]", "[0, 1, 2, 3, 4]", [[]]),
    (".[1:3]", '"abcdef"', ["bc"]),
    (".[]", "[1, 2, 3]", [1, 2, 3]),
    (".[]", '{"b": 2, "a": 1}', [1, 2]),  # objects iterate in key order, as in gojq
    (".a[]", '{"a": ["x", "y"]}', ["x", "y"]),
    (".[]?", "3", []),
    (".[].name?", '[1, {"name": 2}, 3, {"name": 4}]', [2, 4]),
    (".[][0]", "[[1, 2], [3]]", [1, 3]),
    (".a[.i]", '{"a": [5, 6], "i": 1}', [6]),
    ("..", "[[1], 2]", [[[1], 2], [1], 1, 2]),
    ("[..|numbers]", '{"a": [1, {"b": 2}], "c": "x"}', [[1, 2]]),
    ("..?", "1", [1]),
])
def test_path_expressions(query, input_json, expected):
    check(query, input_json, expected)


# -- pipes, commas, literals, constructors ------------------------------------------------------

@pytest.mark.parametrize("query,input_json,expected", [
    (".a | .b", '{"a": {"b": 1}}', [1]),
    (".a, .b", '{"a": 1, "b": 2}', [1, 2]),
    ("(.a, .b) | . * 10", '{"a": 1, "b": 2}', [10, 20]),
    ("1, 2.5, -3, 1e3, .5", "null", [1, 2.5, -3, 1000, 0.5]),
    ('"a\\tb\\n\\"q\\" \\u00e9 \\ud83d\\ude00"', "null", ['a\tb\n"q" é 😀']),
    ("true, false, null", "null", [True, False, None]),
    ("[.[] | . * 2]", "[1, 2]", [[2, 4]]),
    ("[]", "null", [[]]),
    ("[empty]", "null", [[]]),
    ("{}", "null", [{}]),
    ('{a: .x, "b": 1, c: (1, 2)}', '{"x": 0}', [{"a": 0, "b": 1, "c": 1}, {"a": 0, "b": 1, "c": 2}]),
    ("{a, b}", '{"a": 1, "b": 2, "c": 3}', [{"a": 1, "b": 2}]),
    ('{"x y"}', '{"x y": 1}', [{"x y": 1}]),
    ("{(.k): .v}", '{"k": "name", "v": 7}', [{"name": 7}]),
    ('{"\\(.k)-x": 1}', '{"k": "a"}', [{"a-x": 1}]),
    ('{"\\(.k[])"}', '{"k": ["x", "y"], "x": 10, "y": 20}', [{"x": 10}, {"y": 20}]),
    ("1 as $x | {$x}", "null", [{"x": 1}]),
    ("{if: 1, then: 2}", "null", [{"if": 1, "then": 2}]),
    ("{a: 1,}", "null", [{"a": 1}]),
    ("{a: .x | . + 1}", '{"x": 1}', [{"a": 2}]),
    ("{a: (1, 2), b: (3, 4)}", "null",
     [{"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 2, "b": 3}, {"a": 2, "b": 4}]),
    ("# a comment\n.a # another\n", '{"a": 1}', [1]),
])
def test_pipes_literals_constructors(query, input_json, expected):
    check(query, input_json, expected)


# -- operators ----------------------------------------------------------------------------------

@pytest.mark.parametrize("query,input_json,expected", [
    ("1 + 2, 5 - 7, 3 * 4, 7 / 2, 8 / 2, 7 % 3, -7 % 3, 5.5 % 2", "null", [3, -2, 12, 3.5, 4, 1, -1, 1]),
    ('"ab" + "cd"', "null", ["abcd"]),
    ("[1, 2] + [3]", "null", [[1, 2, 3]]),
    ('{"a": 1} + {"b": 2, "a": 3}', "null", [{"a": 3, "b": 2}]),
    ("null + 1, 1 + null, null + null", "null", [1, 1, None]),
    ("[1, 2, 3, 2] - [2]", "null", [[1, 3]]),
    ('"ab" * 3, 0 * "x"', "null", ["ababab", ""]),
    ('{"a": {"b": 1, "c": 2}} * {"a": {"b": 3}}', "null", [{"a": {"b": 3, "c": 2}}]),
    ('"a,b,c" / ","', "null", [["a", "b", "c"]]),
    ("(1, 2) + (10, 20)", "null", [11, 12, 21, 22]),  # the right operand varies slowest
    ("-.a", '{"a": 3}', [-3]),
    ("1 == 1.0, 1 != 2, [1] == [1], {} == {}", "null", [True, True, True, True]),
    ('null < false, false < true, true < 0, 0 < "", "" < [], [] < {}', "null", [True] * 6),
    ('"a" < "b", [1, 2] < [1, 3], {"a": 2} < {"b": 1}, 2 >= 2, 3 <= 2', "null",
     [True, True, True, True, False]),
    ("true and false, true or false, null and true, 1 and 1", "null", [False, True, False, True]),
    ("(true, false) and (true, false)", "null", [True, False, False]),
    ("[.[] | not]", "[null, false, 0, []]", [[True, True, False, False]]),
    (".a // .b", '{"b": 2}', [2]),
    (".a // .b", '{"a": false, "b": 2}', [2]),
    (".a // .b", '{"a": 0, "b": 2}', [0]),
    ("(error(\"x\")) // 1", "null", [1]),
    ("[.[] // 9]", "[null, 1]", [[1]]),
    ("empty // 9", "null", [9]),
])
def test_operators(query, input_json, expected):
    check(query, input_json, expected)


# -- control flow, variables, functions ---------------------------------------------------------

@pytest.mark.parametrize("query,input_json,expected", [
    ('if . > 1 then "big" elif . == 1 then "one" else "small" end', "2", ["big"]),
    ('if . > 1 then "big" elif . == 1 then "one" else "small" end', "1", ["one"]),
    ('if . > 1 then "big" elif . == 1 then "one" else "small" end', "0", ["small"]),
    ("if . then 1 end", "false", [False]),
    ("[.[] | if . then 1 else 0 end]", "[true, null]", [[1, 0]]),
    ('try error("boom") catch .', "null", ["boom"]),
    ("try error({a: 1}) catch .a", "null", [1]),
    ("try error(null) catch .", "null", [None]),
    ("[.[] | try tonumber catch \"bad\"]", '["1", "x"]', [[1, "bad"]]),
    ("try (1, error(\"x\"), 3) catch .", "null", [1, "x"]),
    ("[.[] | (1 / .)?]", "[1, 0, 2]", [[1, 0.5]]),
    ('try ("a" | .[0]) catch .', "null", ["a"]),  # gojq indexes strings by character
    (". as $x | $x + 1", "1", [2]),
    (". as [$a, $b] | $a + $b", "[1, 2]", [3]),
    (". as {a: $x, $b, c: [$c]} | [$x, $b, $c]", '{"a": 1, "b": 2, "c": [3]}', [[1, 2, 3]]),
    ('.[] as {name: $n} | $n', '[{"name": "x"}, {"name": "y"}]', ["x", "y"]),
    ("1 as $x | 2 as $y | [$x, $y, $__loc__.line]", "null", [[1, 2, 1]]),
    ("reduce .[] as $x (0; . + $x)", "[1, 2, 3]", [6]),
    ("reduce .[] as [$k, $v] ({}; .[$k] = $v)", '[["a", 1], ["b", 2]]', [{"a": 1, "b": 2}]),
    ("reduce range(5) as $x (0; . + $x | select($x != 2))", "null", [8]),
    ("[foreach .[] as $x (0; . + $x)]", "[1, 2, 3]", [[1, 3, 6]]),
    ("[foreach .[] as $x (0; . + $x; [$x, .])]", "[1, 2]", [[[1, 1], [2, 3]]]),
    ("def inc: . + 1; [.[] | inc]", "[1, 2]", [[2, 3]]),
    ("def f(g): [.[] | g]; f(. * 10)", "[1, 2]", [[10, 20]]),
    ("def f($a; $b): $a + $b; f(.x; .y)", '{"x": 1, "y": 2}', [3]),
    ("def f(a): a + $__loc__.line; f(1)", "null", [2]),
    ("def fac: if . <= 1 then 1 else . * (. - 1 | fac) end; fac", "10", [3628800]),
    ("def f: reduce .[] as $x (0; . + $x); [[1, 2], [3]] | map(f)", "null", [[3, 3]]),
    ('"a" as $v | def f: $v; "b" as $v | f', "null", ["a"]),
    ("[label $out | .[] | if . > 2 then break $out else . end]", "[1, 2, 3, 4]", [[1, 2]]),
    ("[1, def f: 2; f, 3]", "null", [[1, 2, 3]]),
])
def test_control_flow_variables_functions(query, input_json, expected):
    check(query, input_json, expected)


# -- builtins -----------------------------------------------------------------------------------

@pytest.mark.parametrize("query,input_json,expected", [
    ("length", '"héllo"', [5]),
    ("[.[] | length]", '[[1, 2], {"a": 1}, null, -3]', [[2, 1, 0, 3]]),
    ("utf8bytelength", '"é"', [2]),
    ("keys", '{"b": 1, "a": 2}', [["a", "b"]]),
    ("keys", "[5, 6]", [[0, 1]]),
    ("keys_unsorted", '{"b": 1, "a": 2}', [["a", "b"]]),
    ("[.[] | values]", "[1, null, false]", [[1, False]]),
    ('has("a"), has("z")', '{"a": null}', [True, False]),
    ("has(1), has(5)", "[0, 1]", [True, False]),
    ('.[] | in({"a": 1})', '["a", "b"]', [True, False]),
    ("map(. + 1)", "[1, 2]", [[2, 3]]),
    ("map_values(. * 2)", '{"a": 1, "b": 2}', [{"a": 2, "b": 4}]),
    ("map_values(empty)", "[1, 2]", [[]]),
    ("map(select(. > 1))", "[1, 2, 3]", [[2, 3]]),
    ("[.[] | select(.ok) | .id]", '[{"ok": true, "id": 1}, {"ok": false, "id": 2}]', [[1]]),
    ("[empty]", "null", [[]]),
    ("add", "[1, 2, 3]", [6]),
    ("add", '["a", "b"]', ["ab"]),
    ("add", "[[1], [2]]", [[1, 2]]),
    ("add", "[]", [None]),
    ("add", '{"a": 1, "b": 2}', [3]),
    ("add(.[].x)", '[{"x": 1}, {"x": 2}]', [3]),
    ("any, all", "[true, false]", [True, False]),
    ("any, all", "[]", [False, True]),
    ("any(. > 2), all(. > 0)", "[1, 2, 3]", [True, True]),
    ("any(.[]; . == 2)", "[1, 2]", [True]),
    ("[range(3)], [range(2; 5)], [range(0; 10; 3)], [range(5; 0; -2)]", "null",
     [[0, 1, 2], [2, 3, 4], [0, 3, 6, 9], [5, 3, 1]]),
    ("floor, sqrt", "16.7", [16, math.sqrt(16.7)]),
    ("ceil, round, fabs, pow(2; 10), log10", "100", [100, 100, 100, 1024, 2]),
    ("[.[] | round]", "[1.5, -1.5, 2.4]", [[2, -2, 2]]),
    ("tostring", "[1, \"a\"]", ['[1,"a"]']),
    ("[.[] | tostring]", '[1, "1", null, {"a": 1.0}]', [["1", "1", "null", '{"a":1}']]),
    ("[.[] | tonumber]", '["1", "2.5", 3, "-1e2"]', [[1, 2.5, 3, -100]]),
    ("[.[] | type]", '[null, true, 1, "s", [], {}]', [["null", "boolean", "number", "string", "array", "object"]]),
    ("sort", '[3, "a", null, [1], {}, true, 1]', [[None, True, 1, 3, "a", [1], {}]]),
    ("sort_by(.n)", '[{"n": 2}, {"n": 1}]', [[{"n": 1}, {"n": 2}]]),
    ("sort_by(.a, .b)", '[{"a": 1, "b": 2}, {"a": 1, "b": 1}, {"a": 0, "b": 9}]',
     [[{"a": 0, "b": 9}, {"a": 1, "b": 1}, {"a": 1, "b": 2}]]),
    ("group_by(.k) | map(length)", '[{"k": 1}, {"k": 2}, {"k": 1}]', [[2, 1]]),
    ("unique", "[2, 1, 2, 1]", [[1, 2]]),
    ("unique_by(length)", '["a", "bb", "c"]', [["a", "bb"]]),
    ("min, max", "[3, 1, 2]", [1, 3]),
    ("min, max", "[]", [None, None]),
    ("min_by(.n), max_by(.n)", '[{"n": 2}, {"n": 1}, {"n": 3}]', [{"n": 1}, {"n": 3}]),
    ("reverse", "[1, 2, 3]", [[3, 2, 1]]),
    ("reverse", '"abc"', ["cba"]),
    ('contains("bar")', '"foobar"', [True]),
    ('contains(["baz", "bar"])', '["foobar", "foobaz", "blarp"]', [True]),
    ('contains({foo: 12, bar: [{barp: 12}]})', '{"foo": 12, "bar": [1, 2, {"barp": 12, "blip": 13}]}', [True]),
    ('inside("foobar")', '"bar"', [True]),
    ('startswith("foo"), endswith("bar")', '"foobar"', [True, True]),
    ('ltrimstr("foo"), rtrimstr("bar"), ltrimstr("x")', '"foobar"', ["bar", "foo", "foobar"]),
    ("trim, ltrim, rtrim", '"  a  "', ["a", "a  ", "  a"]),
    ('split(", ")', '"a, b, c"', [["a", "b", "c"]]),
    ('split("a+"; null)', '"xaaybz"', [["x", "ybz"]]),
    ('join(", ")', '["a", 1, null, true]', ["a, 1, , true"]),
    ("ascii_downcase, ascii_upcase", '"aBc-É"', ["abc-É", "ABC-É"]),
    ("to_entries", '{"b": 2, "a": 1}', [[{"key": "a", "value": 1}, {"key": "b", "value": 2}]]),
    ("from_entries", '[{"key": "a", "value": 1}, {"name": "b", "value": 2}, {"k": "c", "v": 3}]',
     [{"a": 1, "b": 2, "c": 3}]),
    ("with_entries(.value += 1)", '{"a": 1, "b": 2}', [{"a": 2, "b": 3}]),
    ('with_entries(select(.key != "b"))', '{"a": 1, "b": 2}', [{"a": 1}]),
    ("[paths]", '{"a": [1], "b": 2}', [[["a"], ["a", 0], ["b"]]]),
    ("[paths(type == \"number\")]", '{"a": [1], "b": 2}', [[["a", 0], ["b"]]]),
    ("[leaf_paths]", '{"a": [1]}', [[["a", 0]]]),
    ("first, last", "[1, 2, 3]", [1, 3]),
    ("first(.[]), last(.[]), first(empty)", "[1, 2, 3]", [1, 3]),
    ("nth(1), nth(1; .[])", "[1, 2, 3]", [2, 2]),
    ("[limit(3; .[])], [limit(0; .[])]", "[1, 2, 3, 4]", [[1, 2, 3], []]),
    ("[limit(3; range(100000000))]", "null", [[0, 1, 2]]),  # lazy
    ("first(range(10; 100000000))", "null", [10]),
    ("[until(. > 100; . * 2)], [while(. < 8; . * 2)]", "1", [[128], [1, 2, 4]]),
    ("[recurse(if . < 3 then . + 1 else empty end)]", "0", [[0, 1, 2, 3]]),
    ("[recurse(.[]?; . != 2)]", "[1, 2]", [[[1, 2], 1]]),
    ("isempty(empty), isempty(1)", "null", [True, False]),
    ("tojson", '{"a": [1, "x"]}', ['{"a":[1,"x"]}']),
    ("fromjson", '"{\\"a\\": 1}"', [{"a": 1}]),
    ('test("b.r")', '"foobar"', [True]),
    ('test("BAR"; "i"), test("x")', '"foobar"', [True, False]),
    ('[match("a(?<n>b)?"; "g") | [.offset, .string, .captures[0].string]]', '"ab a"',
     [[[0, "ab", "b"], [3, "a", None]]]),
    ('capture("(?<y>\\\\d+)-(?<m>\\\\d+)")', '"2024-05"', [{"y": "2024", "m": "05"}]),
    ('[scan("\\\\d")]', '"a1b22"', [["1", "2", "2"]]),
    ('sub("o"; "0"), gsub("o"; "0"), gsub("(?<l>[a-z])"; "\\(.l|ascii_upcase)")', '"foo"', ["f0o", "f00", "FOO"]),
    ('[splits(", *")]', '"a, b,c"', [["a", "b", "c"]]),
    ("ascii", "65", ["A"]),
    ("[.[] | ascii]", "[104, 105]", [["h", "i"]]),
    ("implode", "[104, 105]", ["hi"]),
    ("explode", '"hi"', [[104, 105]]),
    ("env, $ENV", "null", [{}, {}]),
    ("$ENV.HOME, env.PATH", "null", [None, None]),
    ("flatten, flatten(1)", "[1, [2, [3]]]", [[1, 2, 3], [1, 2, [3]]]),
    ("indices(1), index(1), rindex(1)", "[0, 1, 2, 1]", [[1, 3], 1, 3]),
    ('indices(", "), index(", ")', '"a, b, c"', [[1, 4], 1]),
    ("transpose", "[[1, 2], [3]]", [[[1, 3], [2, None]]]),
    ("walk(if type == \"number\" then . + 1 else . end)", '[1, {"a": 2}]', [[2, {"a": 3}]]),
    ("getpath([\"a\", 0, \"b\"])", '{"a": [{"b": 5}]}', [5]),
    ("getpath([\"x\", \"y\"])", "{}", [None]),
    ("[splits(\"a\")] | length", '"banana"', [4]),
    ("infinite > 1e308, (nan | isnan), (1 | isinfinite)", "null", [True, True, False]),
    ("abs", "-5", [5]),
    ("toboolean", '"true"', [True]),
    ("pick(.a.b)", '{"a": {"b": 1, "c": 2}, "d": 3}', [{"a": {"b": 1}}]),
    ("INDEX(.id)", '[{"id": 1}, {"id": 2}]', [{"1": {"id": 1}, "2": {"id": 2}}]),
    ("IN(2, 3)", "3", [True]),
    ("todate", "1700000000", ["2023-11-14T22:13:20Z"]),
    ('fromdate', '"2023-11-14T22:13:20Z"', [1700000000]),
    ('strftime("%Y-%m-%d")', "1700000000", ["2023-11-14"]),
    ("[tostream]", '{"a": [1]}', [[[["a", 0], 1], [["a", 0]], [["a"]]]]),
    ("splits(\"x\")", '"a"', ["a"]),
    ("input_filename", "null", [None]),
])
def test_builtins(query, input_json, expected):
    check(query, input_json, expected)


# -- strings: interpolation and formats ---------------------------------------------------------

@pytest.mark.parametrize("query,input_json,expected", [
    ('"name: \\(.name), n: \\(.n + 1)"', '{"name": "x", "n": 1}', ["name: x, n: 2"]),
    ('"\\(.)"', '[1, {"a": "b"}]', ['[1,{"a":"b"}]']),
    ('"\\(1, 2)-\\(3, 4)"', "null", ["1-3", "2-3", "1-4", "2-4"]),  # the last part varies slowest
    ('"outer \\("inner \\(1 + 2)")"', "null", ["outer inner 3"]),
    ("@base64", '"hello"', ["aGVsbG8="]),
    ("@base64d", '"aGVsbG8="', ["hello"]),
    ("@base64d", '"aGVsbG8"', ["hello"]),
    ("@base32, (@base32 | @base32d)", '"hi"', ["NBUQ====", "hi"]),
    ("@json, @text", '[1, "a"]', ['[1,"a"]', '[1,"a"]']),
    ("@text", '"plain"', ["plain"]),
    ("@csv", '[1, "a\\"b", null, true]', ['1,"a""b",,true']),
    ("@tsv", '["a\\tb", 1, null, "c\\\\d"]', ["a\\tb\t1\t\tc\\\\d"]),
    ("@html", '"<a href=\'x\'>&</a>"', ["&lt;a href=&apos;x&apos;&gt;&amp;&lt;/a&gt;"]),
    ("@uri", '"a b&c=d/é~"', ["a%20b%26c%3Dd%2F%C3%A9~"]),
    ("@sh", '"it\'s"', ["'it'\\''s'"]),
    ("@sh", '["a b", 1, null]', ["'a b' 1 null"]),
    ('@sh "echo \\(.)"', '"a\'b"', ["echo 'a'\\''b'"]),
    ('@json "v=\\(.)"', '{"a": 1}', ['v={"a":1}']),
    ('@base64 "x\\(.)y"', '"hi"', ["xaGk=y"]),
    ('format("base64")', '"hi"', ["aGk="]),
])
def test_strings_and_formats(query, input_json, expected):
    check(query, input_json, expected)


# -- paths and assignment -----------------------------------------------------------------------

@pytest.mark.parametrize("query,input_json,expected", [
    ("path(.a[0].b)", "null", [["a", 0, "b"]]),
    ("[path(..)]", '{"a": [1]}', [[[], ["a"], ["a", 0]]]),
    ("[path(.a[] | select(. > 1))]", '{"a": [1, 2, 3]}', [[["a", 1], ["a", 2]]]),
    ("path(.[1:3])", "[1, 2, 3]", [[{"start": 1, "end": 3}]]),
    ('setpath(["a", "b"]; 1)', "null", [{"a": {"b": 1}}]),
    ("setpath([2]; 9)", "[1]", [[1, None, 9]]),
    ('delpaths([["a"], ["b", 0]])', '{"a": 1, "b": [1, 2], "c": 3}', [{"b": [2], "c": 3}]),
    ("del(.a)", '{"a": 1, "b": 2}', [{"b": 2}]),
    ("del(.[1, 2])", "[0, 1, 2, 3]", [[0, 3]]),
    ("del(.[] | select(. == 2))", "[1, 2, 3, 2]", [[1, 3]]),
    ("del(.[-1], .[0])", "[1, 2, 3]", [[2]]),
    ("to_entries | map(.key) | join(\",\")", '{"b": 1, "a": 2}', ["a,b"]),
    (".a = 1", "{}", [{"a": 1}]),
    (".a.b = .c", '{"c": 5}', [{"a": {"b": 5}, "c": 5}]),
    (".a = (1, 2)", "{}", [{"a": 1}, {"a": 2}]),
    (".[] = 0", "[1, 2]", [[0, 0]]),
    (".a |= . + 1", '{"a": 1}', [{"a": 2}]),
    (".[] |= . * 2", "[1, 2]", [[2, 4]]),
    (".a += 10, .a -= 1, .a *= 3, .a /= 2, .a %= 2", '{"a": 4}',
     [{"a": 14}, {"a": 3}, {"a": 12}, {"a": 2}, {"a": 0}]),
    (".a //= 5, .b //= 5", '{"a": 1, "b": null}', [{"a": 1, "b": None}, {"a": 1, "b": 5}]),
    (".a[1:] = [9]", '{"a": [1, 2, 3]}', [{"a": [1, 9]}]),
    ("(.a, .b) |= . + 1", '{"a": 1, "b": 2}', [{"a": 2, "b": 3}]),
    ("(.[] | select(. > 1)) |= empty", "[1, 2, 3, 1]", [[1, 1]]),
    (".items[].done = true", '{"items": [{"id": 1}, {"id": 2}]}',
     [{"items": [{"id": 1, "done": True}, {"id": 2, "done": True}]}]),
    (".a |= (.b = 1)", '{"a": {}}', [{"a": {"b": 1}}]),
    ("getpath([\"a\", \"b\"]) |= 3", "{}", [{"a": {"b": 3}}]),
    ("first(.[]) |= 10", "[1, 2]", [[10, 2]]),
    ("to_entries", "[5]", [[{"key": 0, "value": 5}]]),
])
def test_paths_and_assignment(query, input_json, expected):
    check(query, input_json, expected)


def test_assignment_does_not_mutate_input():
    data = {"a": {"b": [1, 2]}}
    assert jq.compile(".a.b[0] = 9 | del(.a.b[1])").run(data) == [{"a": {"b": [9]}}]
    assert data == {"a": {"b": [1, 2]}}


# -- printing as Dagu does ----------------------------------------------------------------------

def test_dagu_example_prints_json_string():
    assert jq.run(".user.name", '{"user": {"name": "John", "age": 30}}') == '"John"'


def test_dagu_example_raw():
    assert jq.run(".user.name", '{"user": {"name": "John", "age": 30}}', raw=True) == "John"


def test_pretty_printing_uses_four_spaces_and_sorted_keys():
    assert jq.run(".", '{"user": {"name": "John", "age": 30}, "tags": ["a"], "e": [], "o": {}}') == (
        '{\n'
        '    "e": [],\n'
        '    "o": {},\n'
        '    "tags": [\n'
        '        "a"\n'
        '    ],\n'
        '    "user": {\n'
        '        "age": 30,\n'
        '        "name": "John"\n'
        '    }\n'
        '}'
    )


def test_each_result_on_its_own_line():
    assert jq.run(".items[]", '{"items": ["foo", "bar"]}') == '"foo"\n"bar"'
    assert jq.run(".items[]", '{"items": ["foo", "bar"]}', raw=True) == "foo\nbar"
    assert jq.run("empty", "{}") == ""


@pytest.mark.parametrize("query,input_json,raw,expected", [
    (".n", '{"n": 42}', False, "42"),
    (".n", '{"n": 30.0}', False, "30"),
    (".n * 1.5", '{"n": 2}', False, "3"),
    (".n", '{"n": 3.14159}', True, "3.14159"),
    (".n", '{"n": -10}', True, "-10"),
    (".n", '{"n": 1e21}', False, "1e+21"),
    (".n", '{"n": 100000000000000000000}', False, "100000000000000000000"),
    (".n", '{"n": 1.5e-7}', False, "1.5e-7"),
    ("1 / 3", "{}", False, "0.3333333333333333"),
    (".f", '{"f": true}', True, "true"),
    (".v", '{"v": null}', True, ""),
    (".items", '{"items": [1, 2, 3]}', True, "[1,2,3]"),
    (".items", '{"items": [1, 2, 3]}', False, "[\n    1,\n    2,\n    3\n]"),
    (".", '{"b": 1, "a": "x"}', True, '{"a":"x","b":1}'),
    (".m", '{"m": "hello\\nworld"}', True, "hello\nworld"),
    (".m", '{"m": "<a&b>"}', False, '"\\u003ca\\u0026b\\u003e"'),  # Go's encoding/json escapes
    (".m", '{"m": "é\\t\\u0001"}', False, '"é\\t\\u0001"'),
    # raw numbers print the way Go's fmt prints float64 input values ...
    (".n", '{"n": 1000000}', True, "1e+06"),
    (".n", '{"n": 123456}', True, "123456"),
    (".n", '{"n": 0.00001}', True, "1e-05"),
    # ... while integers jq computes (length, keys, integer arithmetic) stay integers
    (".s | length", '{"s": [1, 2, 3, 4, 5, 6, 7]}', True, "7"),
    ("1000000 + 1, ([range(12)] | length * 100000)", "{}", True, "1000001\n1200000"),
    ("nan, infinite, -infinite", "{}", False, "null\n1.7976931348623157e+308\n-1.7976931348623157e+308"),
    ("nan, infinite", "{}", True, "NaN\n+Inf"),
])
def test_output_formatting(query, input_json, raw, expected):
    assert jq.run(query, input_json, raw=raw) == expected


def test_format_result_directly():
    assert jq.format_result({"a": [1.0, 2.5]}) == '{\n    "a": [\n        1,\n        2.5\n    ]\n}'
    assert jq.format_result("x", raw=True) == "x"
    assert jq.format_result(None, raw=True) == ""


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("query,fragment", [
    (".a.", 'syntax error at position 2: unexpected token "."'),
    (".a |", "syntax error at position 4: unexpected end of query"),
    (".a | | .b", 'syntax error at position 5: unexpected token "|"'),
    ("{a: 1", 'syntax error at position 5'),
    ('"abc', "unterminated string"),
    ("if . then 1", 'expected "end"'),
    ("1 == 2 == 3", 'unexpected token "=="'),
    ("@nope", "format not defined: @nope"),
    ("invalid jq syntax {", "syntax error"),
    ("nosuchfn", "function not defined: nosuchfn/0"),
    ("map", "function not defined: map/0"),
    ("$undefined", "variable not defined: $undefined"),
    ("break $x", "label not defined: $x"),
    ("", "missing query"),
    ("def f: 1;", "missing query"),
])
def test_compile_errors(query, fragment):
    with pytest.raises(jq.JqError) as info:
        jq.compile(query)
    assert fragment in str(info.value)
    assert str(info.value).startswith("jq: ")


@pytest.mark.parametrize("query,input_json,message", [
    (".name", "[1]", 'cannot index array with "name"'),
    (".[0]", '{"a": 1}', "cannot index object with number"),
    (".a.b", '{"a": 5}', 'cannot index number with "b"'),
    (".[]", "5", "cannot iterate over number (5)"),
    ('1 + "a"', "null", 'number (1) and string ("a") cannot be added'),
    ("{} - 1", "null", "cannot be subtracted"),
    ("1 / 0", "null", "cannot divide number (1) by: number (0)"),
    ('error("custom")', "null", "custom"),
    ("error({a: 1})", "null", '{"a":1} (not a string)'),
    ("true | length", "null", "boolean (true) has no length"),
    ("keys", "1", "number (1) has no keys"),
    ('"x" | tonumber', "null", 'tonumber cannot be applied to "x": invalid number'),
    ("{(1): 2}", "null", "object keys must be strings"),
    ("[limit(-1; 1)]", "null", "doesn't support negative count"),
    ('"a" | test("(")', "null", "is not a valid regex"),
    ("path(1)", "null", "invalid path expression with result 1"),
    ("def f: f + 1; f", "null", "nested too deeply"),
])
def test_runtime_errors(query, input_json, message):
    with pytest.raises(jq.JqError) as info:
        outputs(query, input_json)
    assert info.value.message == message or message in info.value.message
    assert str(info.value) == "jq: " + info.value.message


def test_error_value_reaches_catch():
    assert outputs('try (.a | .b) catch .', '{"a": [1]}') == ['cannot index array with "b"']


def test_invalid_json_input():
    with pytest.raises(jq.JqError, match="invalid JSON input"):
        jq.run(".", "{not json")
    with pytest.raises(jq.JqError, match="invalid JSON input"):
        jq.run(".", '{"a": 1} {"b": 2}')
    with pytest.raises(jq.JqError, match="invalid JSON input"):
        jq.run(".", "NaN")
    with pytest.raises(jq.JqError, match="invalid JSON input"):
        jq.run(".", "")


def test_input_is_checked_before_the_query():
    with pytest.raises(jq.JqError, match="invalid JSON input"):
        jq.run("{", "[")


def test_run_raises_runtime_errors():
    with pytest.raises(jq.JqError, match='cannot index number with "x"'):
        jq.run(".[] | .x", "[1]")


def test_execute_reports_runtime_errors_on_stderr_like_dagu():
    stdout, stderr = jq.execute('.[] | if . == 2 then error("two") else . end', "[1, 2, 3]")
    assert stdout == "1\n"  # evaluation stops at the first uncaught error, as in gojq
    assert stderr == "failed to run jq query: two"
    assert jq.execute(".a", '{"a": "x"}', raw=True) == ("x\n", "")
    with pytest.raises(jq.JqError, match="syntax error"):
        jq.execute(".a |", "{}")  # gojq.Parse fails: the step fails
    with pytest.raises(jq.JqError, match="invalid JSON input"):
        jq.execute(".", "{")


def test_execute_reports_undefined_names_on_stderr_like_dagu():
    # gojq compiles when the query runs, so these reach Dagu through the result iterator
    assert jq.execute("nosuchfn", "{}") == ("", "failed to run jq query: function not defined: nosuchfn/0")
    assert jq.execute("", "{}") == ("", 'failed to run jq query: missing query (try ".")')


def test_too_deep_nesting_is_a_jq_error():
    with pytest.raises(jq.JqError, match="nested too deeply"):
        jq.run(".", "[" * 5000 + "]" * 5000)
    with pytest.raises(jq.JqError, match="nested too deeply"):
        jq.run("reduce range(2000) as $i (1; [.])", "{}")


def test_compile_is_cached_and_reusable():
    program = jq.compile(".a + 1")
    assert jq.compile(".a + 1") is program
    assert program.run({"a": 1}) == [2]
    assert program.run({"a": 41}) == [42]


def test_errors_are_value_errors():
    assert issubclass(jq.JqError, ValueError)

"""The schema checker the endpoint tests rely on: every rule accepts what it should and rejects
what it should, so a broken checker cannot pass responses silently."""
from __future__ import annotations

import pytest

from tests import apischema
from tests.apischema import Checker, SchemaError

DOC = {
    "paths": {
        "/things/{id}": {
            "get": {"responses": {
                "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                "default": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Err"}}}},
            }},
            "delete": {"responses": {"204": {"description": "gone"}}},
        },
        "/text": {"get": {"responses": {"200": {"content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    },
    "components": {"schemas": {
        "Thing": {"type": "object", "required": ["id", "kind"], "properties": {
            "id": {"type": "integer"},
            "kind": {"$ref": "#/components/schemas/Kind"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "child": {"$ref": "#/components/schemas/Thing"},
            "note": {"type": "string", "nullable": True},
        }},
        "Kind": {"type": "string", "enum": ["a", "b"]},
        "Code": {"type": "integer", "enum": [0, 1, 2]},
        "Err": {"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}},
        "Detailed": {"allOf": [{"$ref": "#/components/schemas/Thing"},
                               {"type": "object", "required": ["extra"],
                                "properties": {"extra": {"type": "boolean"}}}]},
        "a/b": {"type": "number"},
    }},
}
CHECKER = Checker(DOC)


@pytest.mark.parametrize("schema, instance", [
    ({"type": "string"}, ""),
    ({"type": "string"}, "x"),
    ({"type": "integer"}, 0),
    ({"type": "integer"}, -7),
    ({"type": "number"}, 1),
    ({"type": "number"}, 1.5),
    ({"type": "boolean"}, False),
    ({"type": "array"}, []),
    ({"type": "object"}, {}),
    ({}, None),
    ({}, {"anything": [1, "x"]}),
    ({"type": "string", "nullable": True}, None),
    ({"enum": ["a", 1]}, 1),
    ({"enum": [1]}, 1.0),
    ({"type": "array", "items": {"type": "integer"}}, [1, 2, 3]),
    ({"type": "object", "required": ["a"]}, {"a": None}),
    ({"type": "object", "properties": {"a": {"type": "integer"}}}, {"b": "not checked"}),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, {"x": 1, "y": 2}),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
     {"a": "x"}),
    ({"type": "integer", "minimum": 1, "maximum": 3}, 3),
    ({"type": "array", "minItems": 1, "maxItems": 2}, [0]),
    ({"type": "string", "minLength": 1, "maxLength": 2}, "ab"),
    ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, 5),
    ({"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]}, "s"),
    ({"type": "string", "pattern": "^[a-z]+$"}, "NOT CHECKED BY DEFAULT"),
    ({"type": "string", "description": "d", "format": "int64", "example": "e",
      "x-enum-varnames": ["A"]}, "annotations ignored"),
    ("Thing", {"id": 1, "kind": "a"}),
    ("Thing", {"id": 1, "kind": "b", "tags": ["t"], "note": None,
               "child": {"id": 2, "kind": "a", "child": {"id": 3, "kind": "b"}}}),
    ("#/components/schemas/Kind", "a"),
    ("#/components/schemas/a~1b", 2.5),
    ("Code", 2),
    ("Detailed", {"id": 1, "kind": "a", "extra": True}),
])
def test_valid_instances_have_no_problems(schema, instance):
    assert CHECKER.check(instance, schema) == []


@pytest.mark.parametrize("schema, instance, expected", [
    ({"type": "string"}, 1, "$: expected string, got integer 1"),
    ({"type": "string"}, None, "$: expected string, got null"),
    ({"type": "integer"}, 1.0, "$: expected integer, got number 1.0"),
    ({"type": "integer"}, True, "$: expected integer, got boolean true"),
    ({"type": "integer"}, "1", "$: expected integer, got string '1'"),
    ({"type": "number"}, False, "$: expected number, got boolean false"),
    ({"type": "number"}, "1.5", "$: expected number, got string '1.5'"),
    ({"type": "boolean"}, 0, "$: expected boolean, got integer 0"),
    ({"type": "boolean"}, "true", "$: expected boolean, got string 'true'"),
    ({"type": "array"}, {}, "$: expected array, got object"),
    ({"type": "array"}, None, "$: expected array, got null"),
    ({"type": "object"}, [], "$: expected object, got array of 0"),
    ({"type": "object"}, None, "$: expected object, got null"),
    ({"type": "string", "nullable": True}, 3, "$: expected string or null, got integer 3"),
    ({"type": "string", "nullable": False}, None, "$: expected string, got null"),
    ({"enum": ["a", "b"]}, "c", "$: string 'c' is not one of ['a', 'b']"),
    ({"enum": [1]}, True, "$: boolean true is not one of [1]"),
    ({"enum": [True]}, 1, "$: integer 1 is not one of [True]"),
    ({"enum": ["1"]}, 1, "$: integer 1 is not one of ['1']"),
    ({"type": "array", "items": {"type": "integer"}}, [1, "2"],
     "$[1]: expected integer, got string '2'"),
    ({"type": "object", "required": ["a"]}, {}, "$: missing required property 'a'"),
    ({"type": "object", "properties": {"a": {"type": "integer"}}}, {"a": "x"},
     "$.a: expected integer, got string 'x'"),
    ({"type": "object", "properties": {"a": {"type": "integer"}}}, {"a": None},
     "$.a: expected integer, got null"),
    ({"type": "object", "additionalProperties": False}, {"b": 1}, "$: unexpected property 'b'"),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, {"odd key": "x"},
     "$['odd key']: expected integer, got string 'x'"),
    ({"type": "integer", "minimum": 1}, 0, "$: 0 is less than the minimum 1"),
    ({"type": "integer", "maximum": 3}, 4, "$: 4 is more than the maximum 3"),
    ({"type": "array", "minItems": 1}, [], "$: 0 items, fewer than minItems 1"),
    ({"type": "array", "maxItems": 1}, [1, 2], "$: 2 items, more than maxItems 1"),
    ({"type": "string", "minLength": 2}, "a", "$: string shorter than minLength 2"),
    ({"type": "string", "maxLength": 1}, "ab", "$: string longer than maxLength 1"),
    ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 1,
     "$: matches 2 of the oneOf schemas, expected exactly one"),
    ({"oneOf": [{"type": "string"}, {"type": "boolean"}]}, 1,
     "$: matches 0 of the oneOf schemas, expected exactly one ($: expected string, got integer 1; "
     "$: expected boolean, got integer 1)"),
    ({"anyOf": [{"type": "string"}, {"type": "boolean"}]}, 1,
     "$: matches 0 of the anyOf schemas, expected at least one ($: expected string, got integer 1; "
     "$: expected boolean, got integer 1)"),
    ("Thing", {"id": 1}, "$: missing required property 'kind'"),
    ("Thing", {"id": 1, "kind": "z"}, "$.kind: string 'z' is not one of ['a', 'b']"),
    ("Thing", {"id": 1, "kind": "a", "tags": ["ok", 2]}, "$.tags[1]: expected string, got integer 2"),
    ("Thing", {"id": 1, "kind": "a", "child": {"id": "2", "kind": "a"}},
     "$.child.id: expected integer, got string '2'"),
    ("Code", 7, "$: integer 7 is not one of [0, 1, 2]"),
    ("Detailed", {"id": 1, "kind": "a"}, "$: missing required property 'extra'"),
    ("Detailed", {"kind": "a", "extra": 1},
     "$: missing required property 'id'"),
    ("Detailed", {"id": 1, "kind": "a", "extra": 1}, "$.extra: expected boolean, got integer 1"),
])
def test_invalid_instances_name_the_problem_and_its_path(schema, instance, expected):
    problems = CHECKER.check(instance, schema)
    assert expected in problems, problems


def test_every_problem_is_reported_not_just_the_first():
    problems = CHECKER.check({"id": "x", "kind": "z", "tags": [1, 2]}, "Thing")
    assert sorted(problems) == sorted([
        "$.id: expected integer, got string 'x'",
        "$.kind: string 'z' is not one of ['a', 'b']",
        "$.tags[0]: expected string, got integer 1",
        "$.tags[1]: expected string, got integer 2",
    ])


def test_patterns_are_checked_when_asked():
    schema = {"type": "string", "pattern": "^[a-z]+$"}
    assert Checker(DOC, patterns=True).check("abc", schema) == []
    assert Checker(DOC, patterns=True).check("a-b", schema) == [
        "$: 'a-b' does not match the pattern '^[a-z]+$'"]


@pytest.mark.parametrize("schema, message", [
    ({"type": "string", "not": {"type": "integer"}}, "unsupported schema keyword(s) ['not']"),
    ({"type": "text"}, "unknown type 'text'"),
    ({"$ref": "#/components/schemas/Nope"}, "dangling $ref"),
    ({"$ref": "other.yaml#/X"}, "only local $refs"),
    ("Nope", "dangling $ref"),
    ({"type": "array", "items": "string"}, "a schema must be a mapping"),
])
def test_schemas_it_cannot_understand_raise_instead_of_passing(schema, message):
    instance = ["x"] if isinstance(schema, dict) and schema.get("type") == "array" else "x"
    with pytest.raises(SchemaError, match=__import__("re").escape(message)):
        CHECKER.check(instance, schema)


@pytest.mark.parametrize("path, method, status, expected", [
    ("/things/{id}", "get", 200, {"$ref": "#/components/schemas/Thing"}),
    ("/things/{id}", "GET", "200", {"$ref": "#/components/schemas/Thing"}),
    ("/api/v2/things/{id}", "get", 200, {"$ref": "#/components/schemas/Thing"}),
    ("/things/{id}", "get", 404, {"$ref": "#/components/schemas/Err"}),
    ("/text", "get", 200, {"type": "string"}),
])
def test_response_schema_finds_the_body_schema(path, method, status, expected):
    assert CHECKER.response_schema(path, method, status) == expected


@pytest.mark.parametrize("path, method, status, message", [
    ("/nothing", "get", 200, "no path '/nothing'"),
    ("/things/{id}", "post", 200, "no POST operation"),
    ("/things/{id}", "delete", 204, "no body schema"),
    ("/text", "get", 500, "no response 500 or default"),
])
def test_response_schema_errors_are_explicit(path, method, status, message):
    with pytest.raises(SchemaError, match=__import__("re").escape(message)):
        CHECKER.response_schema(path, method, status)


# ------------------------------------------------------------ the reference document

needs_spec = pytest.mark.skipif(not apischema.spec_available(),
                                reason=f"reference OpenAPI document not found at {apischema.SPEC_PATH}")

SUMMARY = {"rootDAGRunName": "d", "rootDAGRunId": "r1", "parentDAGRunName": "",
           "parentDAGRunId": "", "dagRunId": "r1", "name": "d", "status": 4,
           "statusLabel": "finished", "queuedAt": "", "startedAt": "2024-01-01T00:00:00.000Z",
           "finishedAt": "2024-01-01T00:00:01.000Z", "log": "/x/run.log", "params": ""}
NODE = {"step": {"name": "s"}, "stdout": "", "stderr": "", "startedAt": "", "finishedAt": "",
        "status": 4, "statusLabel": "finished", "retryCount": 0, "doneCount": 0}


@needs_spec
def test_every_ref_in_the_reference_resolves():
    doc = apischema.load_spec()
    checker = Checker(doc)
    refs: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(doc)
    assert len(refs) > 50
    for ref in refs:
        checker.resolve(ref)


@needs_spec
def test_every_reference_response_schema_uses_only_supported_keywords():
    doc = apischema.load_spec()
    checked = 0
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if "content" not in response:
                    continue
                schema = apischema.response_schema(path, method, status)
                # an instance of the wrong type visits the top level; an empty object or list
                # visits the keywords below it
                for instance in ({}, [], "x"):
                    apischema.check(instance, schema)
                checked += 1
    assert checked > 30


@needs_spec
@pytest.mark.parametrize("instance, schema, problems", [
    ({"code": "not_found", "message": "m"}, "Error", []),
    ({"code": "nope", "message": "m"}, "Error",
     ["$.code: string 'nope' is not one of ['forbidden', 'bad_request', 'not_found', "
      "'internal_error', 'unauthorized', 'bad_gateway', 'remote_node_error', 'already_running', "
      "'not_running', 'already_exists']"]),
    ({"status": "healthy", "version": "1", "uptime": 3, "timestamp": "t"}, "HealthResponse", []),
    ({"status": "healthy", "version": "1", "uptime": 3.5, "timestamp": "t"}, "HealthResponse",
     ["$.uptime: expected integer, got number 3.5"]),
    (SUMMARY, "DAGRunSummary", []),
    (dict(SUMMARY, status="4"), "DAGRunSummary", ["$.status: expected integer, got string '4'"]),
    (dict(SUMMARY, statusLabel="success"), "DAGRunSummary",
     ["$.statusLabel: string 'success' is not one of ['not started', 'running', 'failed', "
      "'cancelled', 'finished', 'queued', 'partial success']"]),
    (dict(SUMMARY, nodes=[NODE]), "DAGRunDetails", []),
    (SUMMARY, "DAGRunDetails", ["$: missing required property 'nodes'"]),
    (dict(SUMMARY, nodes=[dict(NODE, statusLabel="cancelled")]), "DAGRunDetails",
     ["$.nodes[0].statusLabel: string 'cancelled' is not one of ['not started', 'running', "
      "'failed', 'canceled', 'finished', 'skipped']"]),
    (dict(SUMMARY, finishedAt=None), "DAGRunSummary", ["$.finishedAt: expected string, got null"]),
])
def test_reference_schemas(instance, schema, problems):
    assert apischema.check(instance, schema) == problems


@needs_spec
def test_reference_list_dags_response():
    body = {"dags": [{"fileName": "d", "dag": {"name": "d", "schedule": [{"expression": "* * * * *"}],
                                               "tags": ["a"]},
                      "latestDAGRun": SUMMARY, "suspended": False, "errors": []}],
            "errors": [], "pagination": {"totalRecords": 1, "currentPage": 1, "totalPages": 1,
                                         "nextPage": 0, "prevPage": 0}}
    apischema.assert_response(body, "/dags", "get", 200)
    body["dags"][0]["suspended"] = "false"
    del body["pagination"]["nextPage"]
    assert apischema.check_response(body, "/api/v2/dags", "GET", 200) == [
        "$.dags[0].suspended: expected boolean, got string 'false'",
        "$.pagination: missing required property 'nextPage'",
    ]
    with pytest.raises(AssertionError, match="suspended"):
        apischema.assert_response(body, "/dags", "get", 200)
    assert apischema.response_schema("/dags", "get", 404) == {"$ref": "#/components/schemas/Error"}

"""A small, strict JSON-schema checker over the OpenAPI document of Dagu's REST API v2.

    from tests import apischema
    problems = apischema.check(reply.json, "DAGRunDetails")        # [] when valid
    apischema.assert_response(reply.json, "/dags", "get", 200)      # AssertionError listing them

Supported (the OpenAPI 3.0 subset the reference uses, and a little more): `$ref` (JSON pointers
into the document), `allOf`, `oneOf`, `anyOf`, `type` (`integer` is an int and never a bool or a
float — Go's encoding/json rejects `1.0` for an int field), `nullable`, `enum` (type-strict:
`true` is not `1`), `required`, `properties`, `additionalProperties` (false or a schema),
`items`, `minimum`/`maximum`, `minItems`/`maxItems`, `minLength`/`maxLength`, and `pattern`
when asked (`patterns=True`: the reference's DAGName/DAGRunId patterns reject values Dagu itself
sends, such as `""` for a DAG that never ran). Annotations (`description`, `format`, `example`,
`default`, `x-*`...) are ignored. Any other keyword raises SchemaError, so a schema using
something this checker does not understand can never pass silently.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = Path(os.environ.get("DAGU_API_SPEC")
                 or ROOT.parent / "shared" / "reference" / "dagu-api-v2.yaml")

_TYPES = {"string", "integer", "number", "boolean", "array", "object"}
_ANNOTATIONS = {"description", "format", "example", "examples", "default", "title", "readOnly",
                "writeOnly", "deprecated", "externalDocs", "xml", "discriminator"}
_VALIDATORS = {"$ref", "allOf", "oneOf", "anyOf", "type", "nullable", "enum", "required",
               "properties", "additionalProperties", "items", "pattern", "minimum", "maximum",
               "minItems", "maxItems", "minLength", "maxLength"}


class SchemaError(ValueError):
    """The schema itself is unusable (unknown keyword, dangling $ref, missing response)."""


def spec_available() -> bool:
    """Whether the reference OpenAPI document is where SPEC_PATH says."""
    return SPEC_PATH.is_file()


@functools.lru_cache(maxsize=None)
def load_spec(path: str | None = None) -> dict:
    """The OpenAPI document (cached)."""
    with open(path or SPEC_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


class Checker:
    """Validates instances against schemas of one OpenAPI document."""

    def __init__(self, doc: dict, patterns: bool = False):
        self.doc = doc
        self.patterns = patterns

    # ------------------------------------------------------------ lookups

    def resolve(self, ref: str) -> dict:
        """The schema a `$ref` points to (`#/components/...`), or SchemaError."""
        if not ref.startswith("#/"):
            raise SchemaError(f"only local $refs are supported: {ref!r}")
        node: object = self.doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SchemaError(f"dangling $ref {ref!r} (no {part!r})")
            node = node[part]
        if not isinstance(node, dict):
            raise SchemaError(f"$ref {ref!r} does not name a schema")
        return node

    def schema(self, ref: str | dict) -> dict:
        """A schema from a dict, a `#/...` pointer, or a bare name under components/schemas."""
        if isinstance(ref, dict):
            return ref
        if ref.startswith("#/"):
            return self.resolve(ref)
        return self.resolve(f"#/components/schemas/{ref}")

    def response_schema(self, path_template: str, method: str, status: int | str) -> dict:
        """The JSON body schema of one response in `paths` (`default` when the status is not
        listed); SchemaError when the path, method or a body schema is missing."""
        path_template = _strip_prefix(path_template)
        paths = self.doc.get("paths") or {}
        if path_template not in paths:
            raise SchemaError(f"no path {path_template!r} in the document")
        operation = paths[path_template].get(method.lower())
        if operation is None:
            raise SchemaError(f"no {method.upper()} operation on {path_template!r}")
        responses = operation.get("responses") or {}
        response = responses.get(str(status), responses.get("default"))
        if response is None:
            raise SchemaError(f"{method.upper()} {path_template}: no response {status} or default")
        if "$ref" in response:
            response = self.resolve(response["$ref"])
        content = response.get("content") or {}
        media = content.get("application/json") or next(iter(content.values()), None)
        if not media or "schema" not in media:
            raise SchemaError(f"{method.upper()} {path_template} {status}: no body schema")
        return media["schema"]

    # ------------------------------------------------------------ validation

    def check(self, instance: object, schema: str | dict, path: str = "$") -> list[str]:
        """Every problem of `instance` against `schema`, each prefixed with its JSON path."""
        problems: list[str] = []
        self._check(instance, self.schema(schema), path, problems, depth=0)
        return problems

    def _check(self, value: object, schema: dict, path: str, out: list[str], depth: int) -> None:
        if depth > 100:
            raise SchemaError(f"{path}: schema nesting deeper than 100 (a $ref cycle?)")
        if not isinstance(schema, dict):
            raise SchemaError(f"{path}: a schema must be a mapping, got {type(schema).__name__}")
        unknown = [k for k in schema if k not in _VALIDATORS and k not in _ANNOTATIONS
                   and not k.startswith("x-")]
        if unknown:
            raise SchemaError(f"{path}: unsupported schema keyword(s) {sorted(unknown)}")
        if "$ref" in schema:   # OpenAPI 3.0: siblings of $ref are ignored
            self._check(value, self.resolve(schema["$ref"]), path, out, depth + 1)
            return
        if value is None and schema.get("nullable") is True:
            return
        for sub in schema.get("allOf", ()):
            self._check(value, sub, path, out, depth + 1)
        for keyword, wanted in (("oneOf", "exactly one"), ("anyOf", "at least one")):
            if keyword in schema:
                results = []
                for sub in schema[keyword]:
                    found: list[str] = []
                    self._check(value, sub, path, found, depth + 1)
                    results.append(found)
                passing = sum(1 for r in results if not r)
                if (keyword == "oneOf" and passing != 1) or (keyword == "anyOf" and passing < 1):
                    detail = "; ".join(p for r in results for p in r)
                    out.append(f"{path}: matches {passing} of the {keyword} schemas, expected "
                               f"{wanted}" + (f" ({detail})" if detail else ""))
        kind = schema.get("type")
        if kind is not None:
            if kind not in _TYPES:
                raise SchemaError(f"{path}: unknown type {kind!r}")
            if not _is_type(value, kind):
                out.append(f"{path}: expected {kind}{' or null' if schema.get('nullable') else ''}"
                           f", got {_describe(value)}")
                return
        elif value is None and any(k in schema for k in ("properties", "items", "required")):
            out.append(f"{path}: expected a value, got null")
            return
        if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
            out.append(f"{path}: {_describe(value)} is not one of {schema['enum']}")
        if isinstance(value, str):
            self._check_string(value, schema, path, out)
        if _is_type(value, "number"):
            if "minimum" in schema and value < schema["minimum"]:
                out.append(f"{path}: {value} is less than the minimum {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                out.append(f"{path}: {value} is more than the maximum {schema['maximum']}")
        if isinstance(value, list):
            if "minItems" in schema and len(value) < schema["minItems"]:
                out.append(f"{path}: {len(value)} items, fewer than minItems {schema['minItems']}")
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                out.append(f"{path}: {len(value)} items, more than maxItems {schema['maxItems']}")
            if "items" in schema:
                for i, item in enumerate(value):
                    self._check(item, schema["items"], f"{path}[{i}]", out, depth + 1)
        if isinstance(value, dict):
            self._check_object(value, schema, path, out, depth)

    def _check_string(self, value: str, schema: dict, path: str, out: list[str]) -> None:
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(f"{path}: string shorter than minLength {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"{path}: string longer than maxLength {schema['maxLength']}")
        if self.patterns and "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r} does not match the pattern {schema['pattern']!r}")

    def _check_object(self, value: dict, schema: dict, path: str, out: list[str],
                      depth: int) -> None:
        for key in schema.get("required", ()):
            if key not in value:
                out.append(f"{path}: missing required property {key!r}")
        properties = schema.get("properties") or {}
        for key, item in value.items():
            where = f"{path}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(key)) \
                else f"{path}[{key!r}]"
            if key in properties:
                self._check(item, properties[key], where, out, depth + 1)
                continue
            extra = schema.get("additionalProperties", True)
            if extra is False:
                out.append(f"{path}: unexpected property {key!r}")
            elif isinstance(extra, dict):
                self._check(item, extra, where, out, depth + 1)


def _strip_prefix(path: str) -> str:
    for prefix in ("/api/v2",):
        if path.startswith(prefix + "/"):
            return path[len(prefix):]
    return path


def _is_type(value: object, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, dict)   # object


def _same(a: object, b: object) -> bool:
    """JSON equality: booleans never equal numbers, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, list):
        return f"array of {len(value)}"
    return "object"


# ------------------------------------------------------------ the reference document

def _default(patterns: bool = False) -> Checker:
    return Checker(load_spec(), patterns)


def check(instance: object, schema_ref: str | dict, *, patterns: bool = False) -> list[str]:
    """Problems of `instance` against a schema of the reference (a name such as "DAGFile",
    a `#/components/...` pointer, or a schema dict)."""
    return _default(patterns).check(instance, schema_ref)


def response_schema(path_template: str, method: str, status: int | str) -> dict:
    """The JSON body schema of a response of the reference's `paths`."""
    return _default().response_schema(path_template, method, status)


def check_response(instance: object, path_template: str, method: str, status: int | str, *,
                   patterns: bool = False) -> list[str]:
    """Problems of a response body against its schema in `paths`."""
    checker = _default(patterns)
    return checker.check(instance, checker.response_schema(path_template, method, status))


def assert_response(instance: object, path_template: str, method: str, status: int | str, *,
                    patterns: bool = False) -> None:
    """AssertionError listing every problem of a response body, if any."""
    problems = check_response(instance, path_template, method, status, patterns=patterns)
    assert not problems, (f"{method.upper()} {path_template} {status} does not match the "
                          "reference:\n  " + "\n  ".join(problems))

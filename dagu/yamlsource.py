"""YAML text -> plain Python values that remember the line each key and item came from.

Errors about a DAG must name the line, so we compose YAML nodes ourselves (C parser when
importable) and keep a side table of positions keyed by container identity.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

try:  # the C extension is much faster; the vendored pure-Python PyYAML is the fallback
    _Base = yaml.CSafeLoader  # type: ignore[attr-defined]
except AttributeError:  # pragma: no cover - depends on the host's PyYAML build
    _Base = yaml.SafeLoader

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
# First characters with which a plain scalar can be something other than a string
# (numbers, booleans, null, timestamps, merge keys, ...): only these go to the resolver's regexps.
_MAYBE_TYPED = set("0123456789+-.~<=yYnNtTfFoO")


class _Loader(_Base):
    """Resolves tags with a shortcut for the common case (plain words are strings); the
    stock resolver tries every implicit regexp per scalar, which dominates load time."""

    def resolve(self, kind, value, implicit):
        if kind is ScalarNode:
            if not implicit[0] or not value or value[0] not in _MAYBE_TYPED:
                return _STR if (value or not implicit[0]) else super().resolve(kind, value, implicit)
            return super().resolve(kind, value, implicit)
        if kind is MappingNode:
            return _MAP
        if kind is SequenceNode:
            return _SEQ
        return super().resolve(kind, value, implicit)


@dataclass
class Positions:
    """Where things were in the source: line of a container, of a map key, of a list item."""

    source: str = ""
    _lines: dict = field(default_factory=dict)
    _keep: list = field(default_factory=list)     # keeps containers alive so ids stay unique
    doc_lines: list = field(default_factory=list)  # first line of each document

    def mark(self, obj: object, line: int, key: object = None) -> None:
        self._lines[(id(obj), key)] = (self.source, line)
        if key is None:
            self._keep.append(obj)

    def where(self, obj: object, key: object = None) -> str:
        """`source:line` of obj (or of obj[key]); just the source when unknown."""
        found = self._lines.get((id(obj), key))
        if found is None and key is not None:
            found = self._lines.get((id(obj), None))
        if found is None:
            return self.source
        return f"{found[0]}:{found[1]}"


class YAMLSyntaxError(ValueError):
    """Text that is not YAML; message names line and column."""


def load_documents(text: str, positions: Positions | None, problems: list[str]) -> list[object]:
    """Every document in text, as Python values. With positions, lines are recorded and duplicate
    keys reported; without, it is a faster pass for text that will turn out to be valid."""
    loader = _Loader(text)
    docs: list[object] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if positions is None:
                docs.append(_convert_fast(loader, node, problems))
                continue
            positions.doc_lines.append(node.start_mark.line + 1)
            docs.append(_convert(loader, node, positions, problems))
    except yaml.MarkedYAMLError as exc:
        raise YAMLSyntaxError(_describe(exc)) from None
    except yaml.YAMLError as exc:
        raise YAMLSyntaxError(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return docs


def _describe(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    what = " ".join(p for p in (exc.context, exc.problem) if p)
    return f"{where}invalid YAML: {what}"


def _convert(loader, node, positions: Positions, problems: list[str]) -> object:
    if isinstance(node, ScalarNode):
        return _scalar(loader, node)
    if isinstance(node, SequenceNode):
        items: list = []
        positions.mark(items, node.start_mark.line + 1)
        for i, child in enumerate(node.value):
            items.append(_convert(loader, child, positions, problems))
            positions.mark(items, child.start_mark.line + 1, i)
        return items
    if isinstance(node, MappingNode):
        _report_duplicate_keys(node, positions, problems)
        loader.flatten_mapping(node)   # resolves `<<: *anchor` merges; own keys come last and win
        mapping: dict = {}
        positions.mark(mapping, node.start_mark.line + 1)
        for key_node, value_node in node.value:
            key = _convert(loader, key_node, positions, problems)
            line = key_node.start_mark.line + 1
            if isinstance(key, (list, dict)):
                problems.append(f"{positions.source}:{line}: a mapping key must be a plain value")
                continue
            mapping[key] = _convert(loader, value_node, positions, problems)
            positions.mark(mapping, line, key)
        return mapping
    return None  # pragma: no cover - composer yields only the three node kinds


def _convert_fast(loader, node, problems: list[str]) -> object:
    kind = type(node)
    if kind is ScalarNode:
        return _scalar(loader, node)
    if kind is SequenceNode:
        return [_convert_fast(loader, child, problems) for child in node.value]
    if kind is MappingNode:
        pairs = node.value
        own_keys = len(pairs)
        if any(k.tag == _MERGE for k, _ in pairs):
            loader.flatten_mapping(node)
            pairs, own_keys = node.value, -1
        mapping: dict = {}
        for key_node, value_node in pairs:
            key = _scalar(loader, key_node) if type(key_node) is ScalarNode else None
            if key is None and type(key_node) is not ScalarNode:
                problems.append("a mapping key must be a plain value")
                continue
            mapping[key] = _convert_fast(loader, value_node, problems)
        if own_keys >= 0 and len(mapping) != own_keys:
            problems.append("duplicate key")   # the positioned pass says which, and where
        return mapping
    return None


def document_starts(text: str) -> list[int]:
    """First line of each document (cheap: a compose pass without conversion)."""
    loader = _Loader(text)
    try:
        starts = []
        while loader.check_node():
            starts.append(loader.get_node().start_mark.line + 1)
        return starts
    finally:
        loader.dispose()


def _report_duplicate_keys(node: MappingNode, positions: Positions, problems: list[str]) -> None:
    seen: set[str] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        if key_node.value in seen:
            problems.append(f"{positions.source}:{key_node.start_mark.line + 1}: "
                            f"duplicate key {key_node.value!r}")
        seen.add(key_node.value)


_TRUE = {"yes", "true", "on", "y"}


def _scalar(loader, node: ScalarNode) -> object:
    """A scalar from the tag the resolver already chose (much faster than the constructor)."""
    tag = node.tag
    if tag == "tag:yaml.org,2002:str" or tag == "tag:yaml.org,2002:timestamp":
        return node.value    # timestamps keep the text the user wrote
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return node.value.lower() in _TRUE
    if tag == "tag:yaml.org,2002:int":
        try:
            return int(node.value)
        except ValueError:
            pass
    return loader.construct_object(node)

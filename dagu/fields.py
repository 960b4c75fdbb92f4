"""Reading one YAML mapping of a DAG: known keys (case-insensitive, as Dagu), typed values, errors.

Every typed read reports a problem through the builder and returns a safe default, so a load
collects all problems in one pass instead of stopping at the first.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol


@lru_cache(maxsize=64)
def _canonical_names(allowed: tuple[str, ...]) -> dict[str, str]:
    return {k.lower(): k for k in allowed}


class Reporter(Protocol):
    def error(self, container: object, key: object, message: str) -> None: ...


class Fields:
    """A mapping from YAML with its allowed keys; unknown keys are reported once, here."""

    def __init__(self, raw: Any, allowed: Sequence[str], reporter: Reporter, where: str):
        self.reporter = reporter
        self.where = where
        self.raw = raw if isinstance(raw, dict) else {}
        self._keys: dict[str, Any] = {}
        canonical = _canonical_names(tuple(allowed))
        invalid = []
        for key in self.raw:
            name = canonical.get(str(key).lower())
            if name is None:
                invalid.append(key)
            else:
                self._keys[name] = key
        if invalid:
            reporter.error(self.raw, invalid[0],
                           f"{where} has invalid keys: {', '.join(str(k) for k in invalid)}")

    def has(self, key: str) -> bool:
        return key in self._keys

    def get(self, key: str, default: Any = None) -> Any:
        """The value under key (any spelling), or default."""
        if key not in self._keys:
            return default
        return self.raw[self._keys[key]]

    def key_of(self, key: str) -> Any:
        """The key as written in the YAML (for line lookups)."""
        return self._keys.get(key, key)

    def error(self, key: str, message: str) -> None:
        """Report a problem with the value under key, at its line."""
        self.reporter.error(self.raw, self.key_of(key), f"{self.where}: {key}: {message}")

    def sub(self, key: str, allowed: Sequence[str]) -> "Fields":
        """The nested mapping under key (empty when absent; reported when not a mapping)."""
        value = self.get(key)
        if value is not None and not isinstance(value, dict):
            self.error(key, f"expected a mapping, got {_kind(value)} {value!r}")
            value = None
        return Fields(value, allowed, self.reporter, f"{self.where}.{key}")


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def as_str(f: Fields, key: str, default: str = "") -> str:
    """A string field; numbers are accepted and printed as Go's %v does."""
    value = f.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    f.error(key, f"expected a string, got {_kind(value)}")
    return default


def as_int(f: Fields, key: str, default: int = 0, minimum: int | None = None) -> int:
    """An integer field (a numeric string is accepted)."""
    value = f.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        f.error(key, f"expected an integer, got {_kind(value)} {value!r}")
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        f.error(key, f"expected an integer, got {value!r}")
        return default
    if minimum is not None and number < minimum:
        f.error(key, f"must be at least {minimum}, got {number}")
        return default
    return number


def as_bool(f: Fields, key: str, default: bool = False) -> bool:
    """A boolean field (true/false, also as strings)."""
    value = f.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    f.error(key, f"expected true or false, got {value!r}")
    return default


def as_str_list(f: Fields, key: str, split_commas: bool = False) -> list[str]:
    """A string or a list of strings (a comma-separated string when split_commas)."""
    value = f.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return value.split(",") if split_commas else [value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, (str, int, float)) and not isinstance(item, bool):
                out.append(str(item))
            else:
                f.error(key, f"expected a list of strings, found {_kind(item)} {item!r}")
        return out
    f.error(key, f"expected a string or a list of strings, got {_kind(value)}")
    return []


def as_int_list(f: Fields, key: str) -> tuple[int, ...]:
    """An integer or a list of integers (numeric strings accepted)."""
    value = f.get(key)
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        try:
            if isinstance(item, bool):
                raise ValueError
            out.append(int(str(item).strip()))
        except ValueError:
            f.error(key, f"expected an integer or a list of integers, found {item!r}")
    return tuple(out)

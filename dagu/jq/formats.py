"""@formats: text, json, html, uri, csv, tsv, sh, base64, base64d, base32, base32d."""
from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Callable

from dagu.jq.errors import JqError
from dagu.jq.values import _brief, _desc, _dumps, _tostring

_FORMATS = frozenset({"text", "json", "html", "uri", "csv", "tsv", "sh", "base64", "base64d",
                      "base32", "base32d"})


def _row(name: str, v: object, sep: str, quote: Callable[[str], str]) -> str:
    if not isinstance(v, list):
        raise JqError(f"@{name} cannot be applied to: {_desc(v)}")
    cells = []
    for x in v:
        if isinstance(x, (list, dict)):
            raise JqError(f"@{name} cannot format an array including: {_desc(x)}")
        if isinstance(x, str):
            cells.append(quote(x.replace("\x00", "\\0") if name != "tsv" else x))
        else:
            text = _dumps(x)  # null and NaN ("null") make empty cells, except for @sh
            cells.append("" if text == "null" and name != "sh" else text)
    return sep.join(cells)


def _decode_base(v: object, name: str, decode: Callable[[bytes], bytes], block: int) -> str:
    text = _tostring(v).split("=", 1)[0]
    try:
        data = decode((text + "=" * (-len(text) % block)).encode("ascii"))
    except (binascii.Error, ValueError):
        raise JqError(f"{_brief(v)} is not valid {name} data") from None
    return data.decode("utf-8", "replace")


def _format(name: str, v: object) -> str:
    """Apply `@name` to a value."""
    if name == "text":
        return _tostring(v)
    if name == "json":
        return _dumps(v)
    if name == "html":
        return (_tostring(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace("'", "&apos;").replace('"', "&quot;"))
    if name == "uri":
        return urllib.parse.quote(_tostring(v), safe="~")
    if name == "csv":
        return _row("csv", v, ",", lambda s: '"' + s.replace('"', '""') + '"')
    if name == "tsv":
        return _row("tsv", v, "\t", lambda s: s.replace("\\", "\\\\").replace("\t", "\\t")
                    .replace("\r", "\\r").replace("\n", "\\n").replace("\x00", "\\0"))
    if name == "sh":
        return _row("sh", v if isinstance(v, list) else [v], " ",
                    lambda s: "'" + s.replace("'", "'\\''") + "'")
    if name == "base64":
        return base64.b64encode(_tostring(v).encode("utf-8", "surrogatepass")).decode("ascii")
    if name == "base64d":
        return _decode_base(v, "base64", lambda b: base64.b64decode(b, validate=True), 4)
    if name == "base32":
        return base64.b32encode(_tostring(v).encode("utf-8", "surrogatepass")).decode("ascii")
    if name == "base32d":
        return _decode_base(v, "base32", base64.b32decode, 8)
    raise JqError(f"format not defined: @{name}")

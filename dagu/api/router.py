"""Method + path pattern -> handler. Unknown path: 404; known path, other method: 405 + Allow.

Pure: no sockets, no I/O. Patterns look like `/dags/{fileName}/start`; a `{param}` matches one
non-empty path segment (percent-decoded by the caller)."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from dagu.errors import MethodNotAllowed, NotFound

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    regex: re.Pattern
    handler: Callable
    permission: str = ""      # "", "writeDAGs" or "runDAGs"
    public: bool = False      # reachable without credentials (/health)


class Router:
    """An ordered table of routes; literal segments beat parameters (`/dags/tags` vs `/dags/{f}`)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Callable, *, permission: str = "",
            public: bool = False) -> None:
        regex = re.compile("^" + _PARAM.sub(r"(?P<\1>[^/]+)", re.escape(pattern).replace(
            r"\{", "{").replace(r"\}", "}")) + "$")
        self.routes.append(Route(method.upper(), pattern, regex, handler, permission, public))
        # literal routes first: more literal characters = more specific
        self.routes.sort(key=lambda r: -len(_PARAM.sub("", r.pattern)))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and its path parameters; NotFound or MethodNotAllowed (with `allow`)."""
        method = "GET" if method == "HEAD" else method.upper()
        allowed: list[str] = []
        for route in self.routes:
            m = route.regex.match(path)
            if not m:
                continue
            if route.method == method:
                return route, m.groupdict()
            allowed.append(route.method)
        if allowed:
            allow = sorted(set(allowed) | ({"HEAD"} if "GET" in allowed else set()))
            err = MethodNotAllowed(f"method {method} is not allowed on {path}",
                                   {"allow": allow})
            raise err
        raise NotFound(f"no such endpoint: {path}")

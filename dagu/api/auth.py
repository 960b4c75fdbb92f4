"""Authentication (Basic and/or Bearer, constant-time comparisons) and permissions."""
from __future__ import annotations

import base64
import binascii
import hmac

from dagu.config import Config
from dagu.errors import Unauthorized

PUBLIC_PATHS = ("/health",)


def is_public(path: str, config: Config) -> bool:
    """/health is always open; /metrics only when `metrics: public` is configured."""
    return path in PUBLIC_PATHS or (path == "/metrics" and config.metrics_public)


def enabled(config: Config) -> bool:
    return bool(config.auth_token or (config.auth_basic_username and config.auth_basic_password))


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def check(headers, config: Config) -> None:
    """Pass, or raise Unauthorized (with the challenge for WWW-Authenticate)."""
    basic = bool(config.auth_basic_username and config.auth_basic_password)
    if not (basic or config.auth_token):
        return
    header = headers.get("Authorization", "") or ""
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if config.auth_token and scheme == "bearer" and _same(value.strip(), config.auth_token):
        return
    if basic and scheme == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        # evaluate both comparisons: the time taken must not tell which one failed
        ok_user = _same(user, config.auth_basic_username)
        ok_password = _same(password, config.auth_basic_password)
        if ok_user and ok_password:
            return
    err = Unauthorized("authentication required" if not header else "invalid credentials")
    err.challenge = 'Basic realm="dagu"' if basic else 'Bearer realm="dagu"'
    raise err


def permitted(config: Config, permission: str) -> bool:
    """writeDAGs / runDAGs from the config (both default to allowed)."""
    return {"writeDAGs": config.perm_write_dags, "runDAGs": config.perm_run_dags}.get(permission, True)

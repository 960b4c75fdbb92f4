"""`executor: http`: `command: "<METHOD> <url>"` with Dagu's config keys (timeout, headers,
query, body, silent, json, skipTLSVerify). The response goes to the step's stdout; a status
outside 2xx fails the step with `http status code not 2xx: N`."""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request

from dagu.executors.base import ExecutionContext, StepFailed
from dagu.executors.command import log_offset
from dagu.expand import evaluate

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_BODY_BYTES = 64 << 20   # a response bigger than this is cut (it goes to a log file anyway)


def _config(ctx: ExecutionContext) -> dict:
    """The executor config (or a JSON object in `script`, as Dagu allows), strings evaluated."""
    config = dict(ctx.node.step.executor.config or {})
    if ctx.node.step.script.strip():
        try:
            config.update(json.loads(evaluate(ctx.node.step.script, ctx.layers, environ=ctx.env)))
        except (ValueError, TypeError) as exc:
            raise StepFailed(f"http executor: script must be a JSON object of settings: {exc}") from None
    return _evaluate_strings(config, ctx)


def _evaluate_strings(value, ctx: ExecutionContext):
    if isinstance(value, str):
        return evaluate(value, ctx.layers, environ=ctx.env, step_props=ctx.step_props)
    if isinstance(value, dict):
        return {k: _evaluate_strings(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [_evaluate_strings(v, ctx) for v in value]
    return value


def build_request(command: str, config: dict) -> tuple[urllib.request.Request, float]:
    """The request for `METHOD URL` (method defaults to GET) and the timeout in seconds."""
    words = command.split(None, 1)
    if len(words) == 2 and words[0].upper() in METHODS:
        method, url = words[0].upper(), words[1].strip()
    elif len(words) == 1:
        method, url = "GET", words[0]
    else:
        raise StepFailed(f"http executor: command must be 'METHOD URL', got {command!r}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StepFailed(f"http executor: not an http(s) URL: {url!r}")
    query = config.get("query") or {}
    if query:
        extra = urllib.parse.urlencode({k: str(v) for k, v in query.items()})
        url = urllib.parse.urlunsplit(parts._replace(query="&".join(q for q in (parts.query, extra) if q)))
    body = config.get("body")
    data = None if body in (None, "") else (body if isinstance(body, str) else json.dumps(body)).encode()
    request = urllib.request.Request(url, data=data, method=method)
    for name, value in (config.get("headers") or {}).items():
        request.add_header(str(name), str(value))
    timeout = float(config.get("timeout") or 30)
    return request, timeout


class HTTPStep:
    """One HTTP request per execution."""

    def run(self, ctx: ExecutionContext) -> int:
        config = _config(ctx)
        command = evaluate(ctx.node.step.cmd_with_args, ctx.layers, environ=ctx.env,
                           step_props=ctx.step_props)
        request, timeout = build_request(command, config)
        context = ssl._create_unverified_context() if config.get("skipTLSVerify") else None
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
                status, headers, body = resp.status, dict(resp.headers.items()), resp.read(MAX_BODY_BYTES)
        except urllib.error.HTTPError as exc:
            status, headers, body = exc.code, dict(exc.headers.items()), exc.read(MAX_BODY_BYTES)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise StepFailed(f"http request failed: {getattr(exc, 'reason', exc)}") from None
        ctx.stdout_offset = log_offset(ctx.node.stdout)
        with open(ctx.node.stdout, "a", encoding="utf-8") as out:
            out.write(_render(status, headers, body, config))
        if not 200 <= status < 300:
            raise StepFailed(f"http status code not 2xx: {status}")
        return 0

    def stop(self, sig: int) -> None:
        pass   # the request ends by its timeout; the node is marked cancelled by the engine

    def kill(self) -> None:
        pass


def _render(status: int, headers: dict, body: bytes, config: dict) -> str:
    text = body.decode("utf-8", "replace")
    if config.get("json"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        return json.dumps({"status_code": status, "headers": headers, "body": parsed}, indent=1) + "\n"
    if config.get("silent") and 200 <= status < 300:
        return text if text.endswith("\n") or not text else text + "\n"
    head = [f"HTTP {status}"] + [f"{k}: {v}" for k, v in headers.items()]
    return "\n".join(head) + "\n\n" + text + ("" if text.endswith("\n") or not text else "\n")

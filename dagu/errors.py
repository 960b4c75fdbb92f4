"""The error tree. One table maps each error to its HTTP status and API error code."""
from __future__ import annotations


class DaguError(Exception):
    """Base of every error we report to a user (CLI line or API error body)."""

    code = "internal_error"

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(DaguError):
    code = "bad_request"


class NotRunning(DaguError):
    code = "not_running"


class Unauthorized(DaguError):
    code = "unauthorized"


class Forbidden(DaguError):
    code = "forbidden"


class NotFound(DaguError):
    code = "not_found"


class AlreadyRunning(DaguError):
    code = "already_running"


class AlreadyExists(DaguError):
    code = "already_exists"


class PayloadTooLarge(BadRequest):
    """A request body over the limit: code bad_request, HTTP 413."""


class MethodNotAllowed(BadRequest):
    """A known path with the wrong method: code bad_request, HTTP 405."""


class LoadError(BadRequest):
    """A DAG definition that cannot be loaded; carries every problem found."""

    def __init__(self, errors: list[str], source: str = ""):
        self.errors = list(errors)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(self.errors), {"errors": self.errors})


HTTP_STATUS = {
    PayloadTooLarge: 413,
    MethodNotAllowed: 405,
    BadRequest: 400,
    NotRunning: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    AlreadyRunning: 409,
    AlreadyExists: 409,
    DaguError: 500,
}


def http_status(err: DaguError) -> int:
    """HTTP status for an error: the most specific class in HTTP_STATUS wins."""
    for cls in type(err).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500

"""Errors that become OpenAI-shaped JSON: {"error": {"message", "type", "code"}}."""

from __future__ import annotations

from typing import Any


class TokenomyError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None
    upstream_status: int | None = None  # the backend's own status, when a backend failed

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}
        if upstream_status is not None:
            self.upstream_status = upstream_status

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        error.update(self.extra)
        return {"error": error}


class BadRequest(TokenomyError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class Unauthorized(TokenomyError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(TokenomyError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class NotFound(TokenomyError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class PayloadTooLarge(TokenomyError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class BudgetExceeded(TokenomyError):
    """A hard budget limit refused the call (HTTP 429)."""

    status = 429
    type = "budget_exceeded"
    code = "budget_exceeded"


class UpstreamError(TokenomyError):
    """The backend failed: unreachable, 5xx, malformed, or cut off mid-stream."""

    status = 502
    type = "upstream_error"
    code = "bad_gateway"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class ConfigError(TokenomyError):
    status = 500
    type = "config_error"
    code = "bad_config"


class AssetsMissing(TokenomyError):
    status = 503
    type = "server_error"
    code = "assets_missing"


class LedgerUnavailable(TokenomyError):
    """The ledger database cannot be reached: fail closed, the caller may retry."""

    status = 503
    type = "server_error"
    code = "ledger_unavailable"

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **kwargs: Any) -> None:
        headers = {"retry-after": str(retry_after), **(kwargs.pop("headers", None) or {})}
        super().__init__(
            message
            or "The budget ledger is unavailable; the request was not sent. Retry shortly.",
            headers=headers,
            **kwargs,
        )

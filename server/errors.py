"""OpenAI-shaped errors: one exception type, one JSON shape, everywhere (routes, middleware, streams)."""

from __future__ import annotations

from typing import Any

import orjson

# HTTP status -> OpenAI error "type" (what the SDKs show next to the string code).
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type_for(status: int) -> str:
    if status in _TYPES:
        return _TYPES[status]
    return "server_error" if status >= 500 else "invalid_request_error"


class GatewayError(Exception):
    """An error answered to the client as `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        err_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}
        self.err_type = err_type or error_type_for(status)

    def payload(self) -> dict[str, Any]:
        return error_payload(self.message, self.err_type, self.param, self.code)

    def body(self) -> bytes:
        return orjson.dumps(self.payload())


def error_payload(message: str, err_type: str, param: str | None, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


def sse_error_event(message: str, code: str, err_type: str = "server_error") -> bytes:
    """The final event of a stream that cannot finish normally (the SDKs raise on it)."""
    return b"data: " + orjson.dumps(error_payload(message, err_type, None, code)) + b"\n\n"


def bad_param(param: str, message: str) -> GatewayError:
    return GatewayError(400, "invalid_request_error", message, param=param)

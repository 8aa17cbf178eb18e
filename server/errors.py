"""OpenAI-shaped errors: one exception type, answered the same way everywhere (routes, middleware,
streams); the shape itself is built in `server.openai_shapes`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from server.openai_shapes import error_payload, error_type_for


class GatewayError(Exception):
    """An error answered to the client as `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(
        self,
        status: int,
        code: str | None,  # None where OpenAI sends null (an unknown path or method)
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


def error_response(err: GatewayError) -> Response:
    return Response(err.body(), status_code=err.status, media_type="application/json", headers=err.headers)


def bad_param(param: str, message: str) -> GatewayError:
    return GatewayError(400, "invalid_request_error", message, param=param)

"""The engine's HTTP client, and the translation of its failures into the gateway's OpenAI errors."""

from __future__ import annotations

import httpx
import orjson

from server.errors import GatewayError
from server.metrics import Metrics
from server.upstream.http1 import FastHTTP1Transport, UpstreamResponse


class UpstreamClient:
    """The engine's base URL with an httpx client, plus a short path for the two hot calls.

    Chat and completion requests go straight to the transport (`FastHTTP1Transport.post`): httpx's
    client layers (cookies, auth and redirect flows, event hooks) cost ~0.1 ms per request in profiles
    and do nothing for this hop, and its Request/Response objects ~10 µs each. Probes and model listings
    use the ordinary client.
    """

    def __init__(
        self,
        base_url: str,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
        api_key: str | None = None,
    ) -> None:
        if transport is None and base_url.startswith("http://"):
            transport = FastHTTP1Transport(max_keepalive=min(max_connections, 1024))
        self.base_url = base_url
        self.transport = transport  # None: https upstream, httpx's own transport via the client
        self._api_key = api_key  # the engine's own --api-key; clients' keys are never forwarded
        timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=30.0, pool=connect_timeout)
        self._timeout_ext = timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}  # parsed once per path: httpx's URL parser is slow
        self.client = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=256),
            # No env proxies or .netrc: traffic goes straight to the engine.
            trust_env=False,
        )

    def headers(self, request_id: str | None = None) -> dict[str, str]:
        """Headers of a request to the engine: JSON, the request id, the engine's own key."""
        h = {"content-type": "application/json"}
        if request_id:
            h["x-request-id"] = request_id
        if self._api_key:
            h["authorization"] = f"Bearer {self._api_key}"
        return h

    async def post(
        self, path: str, content: bytes, headers: dict[str, str], *, stream: bool
    ) -> httpx.Response | UpstreamResponse:
        """POST to the engine; with stream=False the body is read before returning."""
        if self.transport is None:
            req = self.client.build_request("POST", path, content=content, headers=headers)
            return await self.client.send(req, stream=stream)
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.base_url + path)
        resp: httpx.Response | UpstreamResponse
        if isinstance(self.transport, FastHTTP1Transport):
            resp = await self.transport.post(url, headers, content, self._timeout_ext)
        else:  # a transport given by the caller (tests: httpx.MockTransport)
            req = httpx.Request(
                "POST", url, content=content, headers=headers, extensions={"timeout": self._timeout_ext}
            )
            resp = await self.transport.handle_async_request(req)
            resp.request = req
        if not stream:
            try:
                await resp.aread()
            finally:
                await resp.aclose()
        return resp

    async def aclose(self) -> None:
        await self.client.aclose()


async def post_ok(
    upstream: UpstreamClient,
    metrics: Metrics,
    path: str,
    content: bytes,
    headers: dict[str, str],
    *,
    stream: bool,
    prompt_param: str | None = None,
) -> httpx.Response | UpstreamResponse:
    """`upstream.post`, returning only a 200: a transport failure or any other status is raised as its
    OpenAI-shaped GatewayError (a streamed error body is read and the response closed first)."""
    try:
        resp = await upstream.post(path, content, headers, stream=stream)
    except httpx.HTTPError as exc:
        raise translate_error(exc, metrics) from None
    if resp.status_code == 200:
        return resp
    body = resp.content
    if stream:  # the error body is still to be read
        try:
            body = await resp.aread()
        except httpx.HTTPError:
            body = b""
        finally:
            await resp.aclose()
    raise translate_response(resp.status_code, body, metrics, resp.headers.get("retry-after"), prompt_param)


def translate_error(exc: Exception, metrics: Metrics) -> GatewayError:
    """An httpx failure before the response -> 502 (down), 504 (timeout)."""
    if isinstance(exc, httpx.TimeoutException):
        metrics.upstream_errors.labels("timeout").inc()
        return GatewayError(504, "upstream_timeout", "The model server did not answer in time.")
    metrics.upstream_errors.labels("unavailable").inc()
    return GatewayError(502, "upstream_unavailable", "The model server is unreachable.")


# vLLM's 400s for a prompt longer than the model reads ("This model's maximum context length is N tokens.
# However, your prompt contains ...", or "The decoder prompt (length N) ... is longer than the maximum model
# length of M"): OpenAI's code for these is `context_length_exceeded`, which clients key on (LangChain).
_CONTEXT_LENGTH = ("maximum context length", "maximum model length")


def translate_response(
    status: int,
    content: bytes,
    metrics: Metrics,
    retry_after: str | None = None,
    prompt_param: str | None = None,
) -> GatewayError:
    """A non-200 answer from vLLM -> the same OpenAI shape with string codes. `prompt_param`: the field
    OpenAI names in a context-length error (`messages` for chat, `prompt` for completions)."""
    try:
        obj = orjson.loads(content)
    except orjson.JSONDecodeError:
        obj = {}
    err = obj.get("error") if isinstance(obj, dict) else None
    if not isinstance(err, dict):
        err = obj if isinstance(obj, dict) else {}
    message = (
        err.get("message") if isinstance(err.get("message"), str) else f"Model server returned HTTP {status}."
    )
    param = err.get("param") if isinstance(err.get("param"), str) else None
    if status in (429, 503):
        metrics.upstream_errors.labels("overloaded").inc()
        return GatewayError(
            503,
            "upstream_overloaded",
            "The model server is overloaded; retry shortly.",
            headers={"Retry-After": retry_after or "1"},
        )
    if status >= 500:
        metrics.upstream_errors.labels("server_error").inc()
        return GatewayError(502, "upstream_error", "The model server failed to answer.")
    if status in (401, 403):
        # The client's key was fine (we checked it); the gateway's own upstream credentials are wrong.
        metrics.upstream_errors.labels("auth").inc()
        return GatewayError(
            502, "upstream_auth_failed", "The gateway could not authenticate to the model server."
        )
    metrics.upstream_errors.labels("client_error").inc()
    if status == 404:
        code = "model_not_found" if "model" in message.lower() else "not_found"
    elif status == 400 and any(m in message.lower() for m in _CONTEXT_LENGTH):
        code, param = "context_length_exceeded", prompt_param
    elif isinstance(err.get("code"), str) and err["code"]:
        code = err["code"]
    else:
        code = "invalid_request_error"
    return GatewayError(status, code, message, param=param)

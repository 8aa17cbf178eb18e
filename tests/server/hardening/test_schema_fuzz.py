"""Property-based fuzzing of the gateway's own OpenAPI document (schemathesis, positive and negative
examples) with a valid key, against the real gateway process in front of the echo stand-in.

Properties: no 5xx that is the gateway's fault (the healthy stand-in gives it no reason for one), and
every error is in OpenAI's shape with a string code. A bounded, derandomised number of examples keeps
the run short and repeatable.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.server.hardening.conftest import AUTH, ERROR_FIELDS, MODEL
from tests.support.procs import Proc

OPERATIONS = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("GET", "/v1/models"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
]


def _pin_model(case: schemathesis.Case, pin: bool) -> schemathesis.Case:
    if pin and isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = MODEL
    return case


def _header(r: schemathesis.Response, name: str) -> str:
    value = r.headers.get(name) or [""]  # schemathesis keeps each header as a list of values
    return value[0] if isinstance(value, list) else value


def check_response(case: schemathesis.Case, r: schemathesis.Response) -> None:
    assert r.status_code < 500, (case.method, case.path, case.body, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert _header(r, "content-type").startswith("application/json"), r.headers
        err = r.json()["error"]
        assert set(err) == ERROR_FIELDS, err
        assert isinstance(err["code"], str) and isinstance(err["message"], str) and err["message"]
        assert _header(r, "x-request-id")


# GET routes take no parameters, so only their positive examples exist.
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if m == "POST"
]


@pytest.mark.parametrize("method,path,mode", CASES)
def test_fuzzed_schema_requests_never_get_a_5xx_and_errors_are_openai_shaped(
    gateway: Proc, method: str, path: str, mode: GenerationMode
) -> None:
    # (schemathesis' pytest plugin does not run under pytest 9, so the strategy is driven directly.)
    api = schemathesis.openapi.from_url(gateway.url + "/openapi.json")
    ops = [res.ok() for res in api.get_all_operations()]
    op = next(o for o in ops if o.method.upper() == method and o.path == path)
    seen: list[int] = []

    strategy = op.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE:
        # Valid bodies name the served model half the time, so they get past the model check and through
        # the rails to the upstream (random names are all 404s).
        strategy = st.tuples(strategy, st.booleans()).map(lambda cb: _pin_model(*cb))

    @settings(
        max_examples=100 if method == "POST" else 10,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        r = case.call(base_url=gateway.url, headers=AUTH, timeout=15)
        seen.append(r.status_code)
        check_response(case, r)

    run()
    assert seen, "no examples were generated"
    if method == "POST" and mode is GenerationMode.POSITIVE:
        assert 200 in seen, seen  # valid bodies do get through (the fuzzer is not just hitting 400s)


def test_the_schema_covers_the_v1_routes(gateway: Proc) -> None:
    """The fuzzer only tests what the document describes: make sure the bodies are described."""
    doc = httpx.get(gateway.url + "/openapi.json", timeout=5).json()
    for path in ("/v1/chat/completions", "/v1/completions"):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert {"model"} <= set(body["required"])
    assert "/v1/models" in doc["paths"]

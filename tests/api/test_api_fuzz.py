"""Schemathesis over the served OpenAPI spec, against the real server: no 5xx on any
route, responses as documented, and no mutating route accepts a request without a valid
token. Bounded and repeatable: few examples per operation, derandomized, no database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

Served = Any
TOKEN = "test-token-0123456789abcdef"  # as in conftest.py
SPEC = json.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_text("utf-8"))
OPERATIONS = [(method.upper(), path) for path, ops in SPEC["paths"].items() for method in ops]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
AUTH = {"valid": {"Authorization": f"Bearer {TOKEN}"}, "missing": {},
        "wrong": {"Authorization": "Bearer not-the-token-0123456789"}}
FUZZ = settings(max_examples=5, derandomize=True, database=None, deadline=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate])


def fuzz(served: Served, method: str, path: str, mode: GenerationMode, auth: str) -> int:
    """Run one operation's examples; the number of requests sent."""
    schema = schemathesis.openapi.from_url(served.url + "/openapi.json")
    operation = schema[path][method]
    sent = 0

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        response = case.call(base_url=served.url, headers=AUTH[auth])
        assert response.status_code < 500, case.as_curl_command()
        if method == "POST" and auth != "valid":
            # a path that matched no route at all is not a control request
            unrouted = response.status_code == 404 and "no such route" in response.text
            assert response.status_code == 401 or unrouted, (response.status_code,
                                                              case.as_curl_command())
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:  # nothing to negate (no parameters, no body)
        assert mode is GenerationMode.NEGATIVE
    return sent


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_server_errors_and_responses_as_documented(writable: Served, method: str,
                                                      path: str) -> None:
    sent = fuzz(writable, method, path, GenerationMode.POSITIVE, "valid")
    sent += fuzz(writable, method, path, GenerationMode.NEGATIVE, "valid")
    if method == "POST":
        for auth in ("missing", "wrong"):
            sent += fuzz(writable, method, path, GenerationMode.POSITIVE, auth)
            sent += fuzz(writable, method, path, GenerationMode.NEGATIVE, auth)
    assert sent > 0


def test_every_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) == 20
    assert sum(1 for m, _ in OPERATIONS if m == "POST") == 13

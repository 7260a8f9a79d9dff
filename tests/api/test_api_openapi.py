"""The published OpenAPI spec: docs/openapi.json is what the app serves, and says what
every route needs and answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from watchdog.api import openapi

Served = Any
DOC = Path(__file__).parents[2] / "docs" / "openapi.json"
REGENERATE = "regenerate it: .venv/bin/python -m watchdog.api.openapi docs/openapi.json"


def test_docs_openapi_json_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == openapi.text(), REGENERATE


def test_the_served_spec_is_the_published_one(reader: Served) -> None:
    assert reader.client.get("/openapi.json").json() == json.loads(DOC.read_text("utf-8"))


def test_every_control_route_needs_the_bearer_token_and_a_body() -> None:
    spec = openapi.spec()
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer",
        "description": "The API token (WATCHDOG_API_TOKEN)"}
    posts = {path: ops["post"] for path, ops in spec["paths"].items() if "post" in ops}
    assert sorted(posts) == sorted([
        *(f"/api/modules/{{module}}/{a}" for a in
          ("start", "pause", "resume", "promote", "rollback", "abort", "step-back",
           "set-stage", "approve")),
        "/api/kill-switch", "/api/groups/{group}/kill-switch", "/api/checkpoints",
        "/api/checkpoints/{name}/restore"])
    for path, op in posts.items():
        assert op["security"] == [{"HTTPBearer": []}], path
        assert op["requestBody"]["required"] is True, path
        success = "201" if path == "/api/checkpoints" else "200"
        assert {success, "401", "404", "409", "413", "422"} <= set(op["responses"]), path
    reads = [op for ops in spec["paths"].values() for m, op in ops.items() if m == "get"]
    assert all("security" not in op for op in reads)  # reading needs no token
    body = spec["components"]["schemas"]["ActionBody"]
    assert body["required"] == ["reason"] and body["additionalProperties"] is False


def test_errors_are_documented_as_the_json_they_are() -> None:
    spec = openapi.spec()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert set(op) >= {"operationId", "summary", "responses"}, (path, method)
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, code)

"""OpenAPI documents pasted into prompts: one line per operation plus typed components."""

from __future__ import annotations

import json
from pathlib import Path

from tokenomy.codify.detect import classify
from tokenomy.codify.openapi import METHODS, is_openapi, render_openapi
from tokenomy.codify.shapes import canonical
from tokenomy.codify.typed import render_schema
from tokenomy.codify.typed_parse import parse_schema, parse_typed
from tokenomy.tokenizers import count_text

OPENAPI = Path(__file__).resolve().parents[1] / "data" / "codify" / "openapi"


def test_every_operation_and_component_is_rendered() -> None:
    spec = json.loads((OPENAPI / "litellm_access_groups.json").read_text())
    assert is_openapi(spec) and classify(spec) == "openapi"
    text = render_openapi(spec)
    lines = text.splitlines()
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                assert any(line.startswith(f"{method.upper()} {path}(") for line in lines)
    assert ("PUT /access_group/{access_group}/budget(path: {access_group: string}, "
            "body: AccessGroupBudgetRequest) -> AccessGroupBudgetResponse") in lines
    assert "// Set or replace the shared budget of an access group." in lines
    declared = parse_typed(text[text.index("\ntype ") + 1:]).types
    schemas = spec["components"]["schemas"]
    assert set(declared) == set(schemas)
    for schema in schemas.values():
        assert canonical(parse_schema(render_schema(schema))) == canonical(schema)
    pretty = count_text(json.dumps(spec, indent=2), "gpt-4o")
    assert count_text(text, "gpt-4o") < 0.4 * pretty


def test_query_parameters_and_request_bodies() -> None:
    spec = {"openapi": "3.0.0", "info": {"title": "Pets", "version": "1"}, "paths": {
        "/pets": {"get": {"summary": "List pets", "parameters": [
            {"in": "query", "name": "limit", "schema": {"type": "integer", "maximum": 100}},
            {"in": "header", "name": "X-Trace", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"content": {"application/json": {"schema": {
                "type": "array", "items": {"$ref": "#/components/schemas/Pet"}}}}}}},
                  "post": {"requestBody": {"required": True, "content": {"application/json": {
                      "schema": {"$ref": "#/components/schemas/Pet"}}}},
                      "responses": {"201": {"description": "Created"}}}}},
        "components": {"schemas": {"Pet": {"type": "object", "required": ["name"],
                                           "properties": {"name": {"type": "string"}}}}}}
    assert render_openapi(spec).splitlines() == [
        "// API: Pets 1",
        "// List pets",
        'GET /pets(query?: {limit?: int(maximum=100)}, header: {"X-Trace": string}) -> Pet[]',
        "POST /pets(body: Pet) -> any",
        "type Pet = {",
        "  name: string",
        "}",
    ]

"""Typed schema rendering: lossless round trip on real schemas, and readable output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokenomy.codify.shapes import canonical, is_schema
from tokenomy.codify.typed import render_schema, render_tools
from tokenomy.codify.typed_parse import parse_schema, parse_tools
from tokenomy.tokenizers import count_text

DATA = Path(__file__).resolve().parents[1] / "data" / "codify"
SCHEMAS = sorted((DATA / "schemas").glob("*.json"))

# One schema that uses every feature the notation has a spelling for.
KITCHEN_SINK = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Order",
    "description": "A customer order.\nSent by the shop.",
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^ord_[a-z0-9]{8}$", "description": "Order id"},
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 99, "default": 1},
        "price": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01},
        "status": {"enum": ["new", "paid", "shipped"], "description": "x=1 is not a constraint"},
        "kind": {"const": "order"},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 5,
                 "uniqueItems": True},
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"},
                                              "minItems": 2}},
        "customer": {"$ref": "#/$defs/Customer"},
        "shipping": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}], "default": None},
        "payment": {"oneOf": [{"$ref": "#/$defs/Card"}, {"$ref": "#/$defs/Iban"}]},
        "note": {"type": ["string", "null"], "maxLength": 500},
        "lines": {"type": "array", "minItems": 1, "items": {
            "type": "object", "description": "one line",
            "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
            "required": ["sku"], "additionalProperties": False}},
        "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
        "extra": {"allOf": [{"$ref": "#/$defs/Customer"}, {"$ref": "#/$defs/Address"}]},
        "x-weird key": {"type": "boolean", "deprecated": True},
        "pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
        "maybe_code": {"anyOf": [{"type": "string", "minLength": 3}, {"type": "null"}]},
    },
    "required": ["id", "quantity", "customer", "lines"],
    "additionalProperties": False,
    "$defs": {
        "Customer": {"type": "object", "properties": {"name": {"type": "string"}},
                     "required": ["name"]},
        "Address": {"type": "object", "description": "Postal address",
                    "properties": {"country": {"type": "string", "pattern": "^[A-Z]{2}$"}}},
        "Card": {"type": "object", "properties": {"last4": {"type": "string", "minLength": 4,
                                                            "maxLength": 4}}},
        "Iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}"},
    },
}


def roundtrip(schema: dict) -> dict:
    return parse_schema(render_schema(schema))


def test_kitchen_sink_round_trips_fields_types_required_and_constraints() -> None:
    back = roundtrip(KITCHEN_SINK)
    assert canonical(back) == canonical(KITCHEN_SINK)
    props = back["properties"]
    assert set(back["required"]) == {"id", "quantity", "customer", "lines"}
    assert props["id"]["pattern"] == "^ord_[a-z0-9]{8}$"
    assert props["tags"]["items"]["minLength"] == 1 and props["tags"]["maxItems"] == 5
    assert props["matrix"]["items"]["minItems"] == 2
    assert props["payment"]["oneOf"][1] == {"$ref": "#/$defs/Iban"}
    assert back["$defs"]["Address"]["description"] == "Postal address"


def test_kitchen_sink_reads_like_types() -> None:
    text = render_schema(KITCHEN_SINK)
    lines = text.splitlines()
    assert lines[0] == "// A customer order. Sent by the shop."
    assert lines[1] == "type Order = {  // additionalProperties=false"
    assert "  id: string  // pattern=`^ord_[a-z0-9]{8}$`, Order id" in lines
    assert "  quantity: int  // minimum=1, maximum=99, default=1" in lines
    assert "  tags?: string[]  // minLength=1, maxItems=5, uniqueItems" in lines
    assert "  shipping?: Address | null  // default=null" in lines
    assert "  payment?: Card | Iban  // oneOf" in lines
    status = '  status?: "new" | "paid" | "shipped"  // description="x=1 is not a constraint"'
    assert status in lines
    assert "  maybe_code?: string(minLength=3) | null" in lines
    assert '  "x-weird key"?: bool  // deprecated' in lines
    assert "type Customer = {" in lines


@pytest.mark.parametrize("path", SCHEMAS, ids=[p.stem for p in SCHEMAS])
def test_real_schemas_round_trip_and_shrink(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert is_schema(schema)
    text = render_schema(schema)
    assert canonical(parse_schema(text)) == canonical(schema)
    pretty = count_text(json.dumps(schema, indent=2), "gpt-4o")
    assert count_text(text, "gpt-4o") < 0.6 * pretty


def test_tool_list_round_trips_names_descriptions_and_parameters() -> None:
    tools = json.loads((DATA / "tools" / "github_stripe_tools.json").read_text())
    text = render_tools(tools)
    assert "github_list_issues({  // additionalProperties=false" in text
    assert '  state?: "open" | "closed" | "all"  // default="open", Indicates the state' in text
    back = parse_tools(text)
    assert [t["function"]["name"] for t in back] == [t["function"]["name"] for t in tools]
    for original, parsed in zip(tools, back, strict=True):
        assert parsed["function"]["description"] == original["function"]["description"]
        assert canonical(parsed["function"]["parameters"]) == canonical(
            original["function"]["parameters"])


def test_anthropic_and_mcp_tool_shapes_render_the_same() -> None:
    params = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    openai = render_tools([{"type": "function", "function": {
        "name": "find", "description": "Find", "parameters": params}}])
    anthropic = render_tools([{"name": "find", "description": "Find", "input_schema": params}])
    mcp = render_tools([{"name": "find", "description": "Find", "inputSchema": params}])
    assert openai == anthropic == mcp == "// Find\nfind({\n  q: string\n})"


def test_data_is_not_mistaken_for_a_schema() -> None:
    assert not is_schema({"type": "person", "name": "Ada"})
    assert not is_schema({"properties": "many", "count": 3})
    assert is_schema({"type": "object", "properties": {"a": {"type": "string"}}})


def test_pydantic_models_render_for_sdk_structured_outputs() -> None:
    from typing import Literal

    from pydantic import BaseModel, Field

    from tokenomy.codify import render_model

    class Answer(BaseModel):
        """What the agent returns."""

        verdict: Literal["yes", "no"]
        confidence: float = Field(ge=0, le=1, description="How sure")
        sources: list[str] = Field(default_factory=list, max_length=3)

    text = render_model(Answer)
    assert text.splitlines() == [
        "// What the agent returns.",
        "type Answer = {",
        '  verdict: "yes" | "no"',
        "  confidence: number  // maximum=1, minimum=0, How sure",
        "  sources?: string[]  // maxItems=3",
        "}",
    ]
    assert canonical(parse_schema(text)) == canonical(Answer.model_json_schema())

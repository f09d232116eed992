"""Recognising JSON Schema and tool-definition shapes, and their normal form.

Shared by the renderer (`typed.py`), its parser (`typed_parse.py`) and the
stage's detector: what counts as a schema, which tool shapes exist (OpenAI,
Anthropic, MCP), and `canonical`, the form in which a round trip is compared.
"""

from __future__ import annotations

import re
from typing import Any

PRIMITIVES = {"string": "string", "number": "number", "integer": "int", "boolean": "bool",
              "null": "null"}
# Keywords that carry no meaning for a model writing JSON.
DROPPED = {"title", "$schema", "$id", "$comment"}
REF_PREFIXES = ("#/$defs/", "#/definitions/", "#/components/schemas/")
TYPE_NAME = re.compile(r"[A-Za-z_$][\w$.\-]*\Z")


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def ref_name(ref: str) -> str | None:
    for prefix in REF_PREFIXES:
        if ref.startswith(prefix) and TYPE_NAME.match(ref[len(prefix):]):
            return ref[len(prefix):]
    return None


def simplify(schema: Any) -> Any:
    """Fold a one-member allOf into its parent (pydantic's `allOf: [{$ref}]` idiom)."""
    if not isinstance(schema, dict):
        return schema
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        inner = all_of[0]
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        if not (set(inner) & set(rest)):
            return simplify({**inner, **rest})
    return schema


def schema_defs(schema: dict[str, Any]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            defs.update(schema[key])
    return defs


def tool_parts(tool: dict[str, Any]) -> tuple[str, str | None, Any, dict[str, Any]] | None:
    """(name, description, parameters, extras) for OpenAI, Anthropic and MCP tool shapes."""
    fn = tool.get("function") if tool.get("type") == "function" else tool
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        return None
    params = next((fn[k] for k in ("parameters", "input_schema", "inputSchema") if k in fn), None)
    if params is None and set(fn) - {"name", "description", "strict", "type"}:
        return None
    extras = {k: v for k, v in fn.items() if k == "strict"}
    return fn["name"], fn.get("description"), params or {}, extras


def is_tool_list(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(t, dict) and tool_parts(t) is not None for t in value))


SCHEMA_HINTS = {"properties", "items", "anyOf", "oneOf", "allOf", "$ref", "enum", "$defs",
                "definitions"}


def is_schema(value: Any) -> bool:
    """Whether a parsed JSON value is (almost surely) a JSON Schema, not data."""
    if not isinstance(value, dict):
        return False
    if "$schema" in value:
        return True
    kind = value.get("type")
    typed = kind in PRIMITIVES or kind in ("object", "array") or (
        isinstance(kind, list) and all(isinstance(k, str) and k in
                                       {*PRIMITIVES, "object", "array"} for k in kind))
    props = value.get("properties")
    if isinstance(props, dict) and props and all(
            isinstance(p, dict) and (set(p) & ({"type", "description"} | SCHEMA_HINTS))
            for p in props.values()):
        return typed or "required" in value or kind is None
    return typed and bool(SCHEMA_HINTS & set(value))


_SUBSCHEMA_KEYS = ("items", "additionalProperties", "not", "contains", "propertyNames",
                   "if", "then", "else", "additionalItems", "unevaluatedProperties")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def canonical(schema: Any) -> Any:
    """A normal form that compares equal when two schemas mean the same to a model.

    Spelling differences only: titles and `$schema` dropped, `definitions` ->
    `$defs`, one-value enum -> const, anyOf of bare primitive types -> a type
    list, empty `required` dropped. Fields, types, required sets and
    constraints are kept exactly.
    """
    if schema is True:
        return {}
    if schema is False:
        return {"not": {}}
    if not isinstance(schema, dict):
        return schema
    node = simplify({k: v for k, v in schema.items() if k not in DROPPED})
    out: dict[str, Any] = {}
    defs = schema_defs(node)
    for key, value in node.items():
        if key in ("$defs", "definitions"):
            continue
        if key == "$ref" and isinstance(value, str) and ref_name(value):
            out[key] = f"#/$defs/{ref_name(value)}"
        elif key == "properties" and isinstance(value, dict):
            if value:
                out[key] = {k: canonical(v) for k, v in value.items()}
        elif key in _SUBSCHEMA_KEYS and isinstance(value, dict | bool):
            keep_bool = key == "additionalProperties" and isinstance(value, bool)
            out[key] = value if keep_bool else canonical(value)
        elif key in (*_SUBSCHEMA_LISTS, "items") and isinstance(value, list):
            out[key] = [canonical(v) for v in value]
        elif key == "required" and isinstance(value, list):
            if value:
                out[key] = sorted(value)
        elif key == "description":
            out[key] = one_line(value)
        else:
            out[key] = value
    if defs:
        out["$defs"] = {k: canonical(v) for k, v in defs.items()}
    members = out.get("anyOf")
    if isinstance(members, list) and any(set(m) == {"const"} for m in members) and all(
            set(m) == {"const"} or m == {"type": "null"} for m in members):
        out.pop("anyOf")
        out["enum"] = [m.get("const") for m in members]
    if isinstance(out.get("enum"), list) and len(out["enum"]) == 1:
        out["const"] = out.pop("enum")[0]
    if "enum" in out or "const" in out:
        out.pop("type", None)
    for key in ("anyOf", "oneOf"):
        members = out.get(key)
        if isinstance(members, list) and members and "type" not in out and all(
                set(m) == {"type"} and isinstance(m["type"], str) for m in members):
            out["type"] = [m["type"] for m in out.pop(key)]
    if isinstance(out.get("type"), list) and len(out["type"]) == 1:
        out["type"] = out["type"][0]
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    return out

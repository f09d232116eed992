"""OpenAPI documents -> one line per operation plus typed component schemas.

    // Invoke an agent using the A2A protocol (JSON-RPC 2.0).
    POST /a2a/{agent_id}(path: {agent_id: string}, body: A2ARequest) -> any
    type A2ARequest = { ... }

Operation ids, tags, security, examples, all but the first sentence of a
description, and non-2xx responses are left out:
they do not change what a model should send. Component schemas go through the
same renderer as any JSON Schema, so their fields and constraints survive.
"""

from __future__ import annotations

import re
from typing import Any

from tokenomy.codify.shapes import one_line
from tokenomy.codify.typed import IDENT, Renderer, render_defs, render_value

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def is_openapi(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("paths"), dict) and (
        "openapi" in value or "swagger" in value or "components" in value)


def _json_schema(content: Any) -> Any:
    if not isinstance(content, dict):
        return None
    for media, entry in content.items():
        if "json" in media and isinstance(entry, dict) and "schema" in entry:
            return entry["schema"]
    return None


def _params(renderer: Renderer, params: list[Any], where: str) -> str | None:
    props: dict[str, Any] = {}
    required: list[str] = []
    for param in params:
        if isinstance(param, dict) and param.get("in") == where and "name" in param:
            schema = dict(param.get("schema") or {})
            if param.get("description") and "description" not in schema:
                schema["description"] = param["description"]
            props[param["name"]] = schema
            if param.get("required"):
                required.append(param["name"])
    if not props:
        return None
    fields = ", ".join(
        f"{_key(name)}{'' if name in required else '?'}: {renderer.inline(schema, 0)}"
        for name, schema in props.items())
    return f"{where}{'' if required else '?'}: {{{fields}}}"


def _first_sentence(text: Any) -> str | None:
    """The description's opening sentence: the meaning, without its examples."""
    if not isinstance(text, str) or not text.strip():
        return None
    first = re.split(r"(?<=[.!?])\s|\n\s*\n", text.strip(), maxsplit=1)[0]
    return one_line(first)


def _key(name: str) -> str:
    return name if IDENT.match(name) else render_value(name)


def render_operation(renderer: Renderer, method: str, path: str, op: dict[str, Any],
                     shared: list[Any]) -> str:
    params = [*shared, *(op.get("parameters") or [])]
    args = [a for a in (_params(renderer, params, w) for w in ("path", "query", "header"))
            if a]
    body = op.get("requestBody")
    if isinstance(body, dict):
        schema = _json_schema(body.get("content"))
        if schema is not None:
            optional = "" if body.get("required") else "?"
            args.append(f"body{optional}: {renderer.inline(schema, 0)}")
    result = "any"
    for status, response in (op.get("responses") or {}).items():
        if str(status).startswith("2") and isinstance(response, dict):
            schema = _json_schema(response.get("content"))
            if schema not in (None, {}):
                result = renderer.inline(schema, 0)
            break
    doc = _first_sentence(op.get("description")) or op.get("summary")
    head = [f"// {one_line(doc)}"] if doc else []
    return "\n".join([*head, f"{method.upper()} {path}({', '.join(args)}) -> {result}"])


def render_openapi(spec: dict[str, Any]) -> str:
    renderer = Renderer()
    info = spec.get("info") or {}
    lines = []
    if info.get("title"):
        lines.append(f"// API: {one_line(info['title'])} {info.get('version', '')}".rstrip())
    for path, item in spec["paths"].items():
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for method in METHODS:
            if isinstance(item.get(method), dict):
                lines.append(render_operation(renderer, method, path, item[method], shared))
    schemas = (spec.get("components") or {}).get("schemas") or spec.get("definitions") or {}
    if schemas:
        lines.append(render_defs(schemas))
    return "\n".join(lines)

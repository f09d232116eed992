"""JSON Schema -> compact Meaning-Typed-Prompting style type definitions.

A model reads `name?: string  // maxLength=50, Shown on the card` as well as the
20-line JSON Schema it came from, for a fraction of the tokens. The rendering
is TypeScript-like and lossless for what a model needs to honour (fields,
types, required set, constraints, descriptions); `typed_parse.parse_typed`
reads it back, so the round trip is tested rather than hoped for.

Notation (one way to write each thing):

- primitives `string number int bool null any object array`; `T[]` arrays;
  `A | B` anyOf (and `type: [..]` lists); `A & B` allOf; literals `"a" | 1`
  are enum / const; `Record<string, T>` maps; `Name` refers to `type Name = ..`.
- `{ ... }` objects, one field per line, `key?:` when not required,
  `[key: string]: T` for additionalProperties schemas.
- constraints follow the field in a `// k=v, k=v, description` comment: values
  are JSON, patterns go in backticks. Keys that only apply to strings and
  numbers (`ITEM_KEYS`) sit on the innermost item type of an array field.
  Anything that has no place in a comment is written inline: `string(minLength=1)`.
- tools render as `// description` then `name({ ...fields })`.
"""

from __future__ import annotations

import json
import re
from typing import Any

PRIMITIVES = {"string": "string", "number": "number", "integer": "int", "boolean": "bool",
              "null": "null"}
PRIM_NAMES = {v: k for k, v in PRIMITIVES.items()}
RESERVED = {*PRIM_NAMES, "any", "object", "array", "Record", "type"}
# Constraints that belong to a string/number value, never to an array holding it.
ITEM_KEYS = ("format", "minLength", "maxLength", "pattern", "minimum", "maximum",
             "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "contentEncoding",
             "contentMediaType")
FLAGS = ("oneOf", "uniqueItems", "deprecated", "readOnly", "writeOnly")
# Keywords that carry no meaning for a model writing JSON.
DROPPED = {"title", "$schema", "$id", "$comment"}
STRUCTURAL = {"type", "properties", "required", "items", "anyOf", "oneOf", "allOf",
              "enum", "const", "$ref", "$defs", "definitions", "additionalProperties",
              "description"}
REF_PREFIXES = ("#/$defs/", "#/definitions/", "#/components/schemas/")
IDENT = re.compile(r"[A-Za-z_$][\w$]*\Z")
TYPE_NAME = re.compile(r"[A-Za-z_$][\w$.\-]*\Z")
CONSTRAINT_START = re.compile(r"[\w$\-]+=|(?:" + "|".join(FLAGS) + r")(?:,|\Z)")


def render_value(value: Any) -> str:
    """A constraint value: JSON, except patterns without backticks go in backticks."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _constraint(key: str, value: Any) -> str:
    if key in FLAGS and value is True:
        return key
    if key == "pattern" and isinstance(value, str) and "`" not in value:
        return f"pattern=`{value}`"
    return f"{key}={render_value(value)}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _comment(items: list[str], description: str | None) -> str:
    parts = list(items)
    if description:
        text = _one_line(description)
        # A description that reads like a constraint would be parsed as one.
        parts.append(f"description={render_value(text)}" if CONSTRAINT_START.match(text) else text)
    return ", ".join(parts)


def ref_name(ref: str) -> str | None:
    for prefix in REF_PREFIXES:
        if ref.startswith(prefix) and TYPE_NAME.match(ref[len(prefix):]):
            return ref[len(prefix):]
    return None


def _is_object(schema: dict[str, Any]) -> bool:
    return "properties" in schema and isinstance(schema["properties"], dict)


def _simplify(schema: Any) -> Any:
    """Fold a one-member allOf into its parent (pydantic's `allOf: [{$ref}]` idiom)."""
    if not isinstance(schema, dict):
        return schema
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        inner = all_of[0]
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        if not (set(inner) & set(rest)):
            return _simplify({**inner, **rest})
    return schema


class Renderer:
    """Renders one document's schemas; `indent` is the unit of nesting."""

    def __init__(self, indent: str = "  ") -> None:
        self.indent = indent

    # -- type expressions -------------------------------------------------
    def type_expr(self, schema: Any, depth: int, consumed: set[str], strip: bool = False) -> str:
        """The type text for `schema`; keys it expressed are added to `consumed`.

        `strip`: inside an array field, leave the innermost item's ITEM_KEYS to
        the field comment.
        """
        if schema is True or schema == {}:
            return "any"
        if not isinstance(schema, dict):
            return "any(not={})" if schema is False else "any"
        schema = _simplify(schema)
        if "$ref" in schema and ref_name(str(schema["$ref"])):
            consumed.add("$ref")
            return str(ref_name(str(schema["$ref"])))
        if "const" in schema:
            consumed.update({"const", "type"})
            return render_value(schema["const"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            consumed.update({"enum", "type"})
            return " | ".join(render_value(v) for v in schema["enum"])
        for key, joiner in (("anyOf", " | "), ("oneOf", " | "), ("allOf", " & ")):
            members = schema.get(key)
            if isinstance(members, list) and members and not ({"type", "properties"} & set(schema)):
                consumed.add(key)
                return joiner.join(self.member(m, depth) for m in members)
        kind = schema.get("type")
        if isinstance(kind, list) and kind and not _is_object(schema) and all(
                k in PRIMITIVES or k in ("object", "array") for k in kind):
            consumed.add("type")
            return " | ".join(PRIMITIVES.get(k, k) for k in kind)
        if _is_object(schema) or (kind == "object" and isinstance(
                schema.get("additionalProperties"), dict) and "properties" not in schema):
            return self.object_expr(schema, depth, consumed)
        if kind == "array":
            consumed.add("type")
            if "items" not in schema:
                return "array"
            consumed.add("items")
            if isinstance(schema["items"], list):  # draft-4 tuple form
                return "[" + ", ".join(self.inline(m, depth) for m in schema["items"]) + "]"
            return self.array_item(schema["items"], depth, strip) + "[]"
        if kind == "object":
            consumed.add("type")
            return "object"
        if isinstance(kind, str) and kind in PRIMITIVES:
            consumed.add("type")
            return PRIMITIVES[kind]
        return "any"

    def member(self, schema: Any, depth: int) -> str:
        """A union/intersection member: inline constraints, parens around unions."""
        text = self.inline(schema, depth)
        return f"({text})" if _top_level_has(text, "|&") else text

    def array_item(self, schema: Any, depth: int, strip: bool = False) -> str:
        text = self.inline(schema, depth, keep_item_keys=strip)
        return f"({text})" if _top_level_has(text, "|&") else text

    def inline(self, schema: Any, depth: int, keep_item_keys: bool = False) -> str:
        """A type with its own constraints in `(k=v)` form (no comment available).

        With `keep_item_keys`, string/number constraints are left for the
        field's comment (see ITEM_KEYS) and only the rest goes inline.
        """
        consumed: set[str] = set()
        text = self.type_expr(schema, depth, consumed, keep_item_keys)
        if not isinstance(schema, dict):
            return text
        schema = _simplify(schema)
        rest = self.leftovers(schema, consumed)
        if keep_item_keys and takes_item_keys(schema):
            rest = {k: v for k, v in rest.items() if k not in ITEM_KEYS}
        if "description" in schema:
            rest["description"] = _one_line(schema["description"])
        if not rest:
            return text
        if text.startswith("{\n") and text.endswith("}"):  # an object's own comment line
            description = rest.pop("description", None)
            note = _comment([_constraint(k, v) for k, v in rest.items()], description)
            return f"{{  // {note}" + text[1:]
        inner = ", ".join(_constraint(k, v) for k, v in rest.items())
        if _top_level_has(text, "|&"):
            text = f"({text})"
        return f"{text}({inner})"

    def leftovers(self, schema: dict[str, Any], consumed: set[str]) -> dict[str, Any]:
        """Keywords not expressed by the type text, in schema order."""
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key in consumed or key in DROPPED or key == "description":
                continue
            if key in ("$defs", "definitions"):
                continue
            if key == "oneOf" and "oneOf" in consumed:
                continue
            out[key] = value
        if "oneOf" in consumed:
            out = {"oneOf": True, **out}
        return out

    def item_constraints(self, schema: Any) -> dict[str, Any]:
        """ITEM_KEYS of the innermost item of an array chain (they go in the comment)."""
        node = _simplify(schema)
        while isinstance(node, dict) and node.get("type") == "array" and "items" in node:
            node = _simplify(node["items"])
        if node is schema or not takes_item_keys(node):
            return {}
        return {k: node[k] for k in ITEM_KEYS if k in node}

    # -- objects ----------------------------------------------------------
    def object_expr(self, schema: dict[str, Any], depth: int, consumed: set[str]) -> str:
        consumed.update({"properties", "required", "additionalProperties"})
        if schema.get("type", "object") == "object":
            consumed.add("type")  # a type list stays a constraint
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict):
            return f"Record<string, {self.inline(extra, depth)}>"
        if not isinstance(extra, dict) and "additionalProperties" in schema:
            consumed.discard("additionalProperties")  # true/false goes in the comment
        required = set(schema.get("required") or [])
        pad = self.indent * (depth + 1)
        lines = ["{"]
        for key, sub in props.items():
            lines.append(pad + self.field(key, sub, key in required, depth + 1))
        if isinstance(extra, dict):
            lines.append(f"{pad}[key: string]: {self.inline(extra, depth + 1)}")
        lines.append(self.indent * depth + "}")
        return "\n".join(lines)

    def field(self, key: str, schema: Any, required: bool, depth: int) -> str:
        name = key if IDENT.match(key) else render_value(key)
        head = f"{name}{'' if required else '?'}: "
        return head + self.typed_with_comment(schema, depth)

    def typed_with_comment(self, schema: Any, depth: int) -> str:
        """`type  // comment`; for a multi-line object the comment goes after `{`."""
        consumed: set[str] = set()
        sdict = _simplify(schema) if isinstance(schema, dict) else schema
        if (isinstance(sdict, dict) and sdict.get("type") == "array"
                and isinstance(sdict.get("items"), dict)):
            text = self.array_item(sdict["items"], depth, strip=True) + "[]"
            consumed.update({"type", "items"})
            items = self.item_constraints(sdict)
        else:
            text = self.type_expr(sdict, depth, consumed)
            items = {}
        if not isinstance(sdict, dict):
            return text
        rest = {**items, **self.leftovers(sdict, consumed)}
        note = _comment([_constraint(k, v) for k, v in rest.items()], sdict.get("description"))
        if not note:
            return text
        if "\n" in text and text.endswith("}") and text.startswith("{"):
            first, _, tail = text.partition("\n")
            return f"{first}  // {note}\n{tail}"
        return f"{text}  // {note}"

    # -- documents --------------------------------------------------------
    def declaration(self, name: str, schema: Any) -> str:
        lines = []
        if isinstance(schema, dict) and schema.get("description"):
            lines.append(f"// {_one_line(schema['description'])}")
            schema = {k: v for k, v in schema.items() if k != "description"}
        lines.append(f"type {name} = {self.typed_with_comment(schema, 0)}")
        return "\n".join(lines)

    def tool(self, name: str, description: str | None, params: Any,
             extra: dict[str, Any] | None = None) -> str:
        lines = [f"// {_one_line(description)}"] if description else []
        tail = ""
        if extra:
            tail = "  // " + ", ".join(_constraint(k, v) for k, v in extra.items())
        params = _simplify(params) if isinstance(params, dict) else params
        if not isinstance(params, dict) or not params.get("properties"):
            lines.append(f"{name}(){tail}")
            return "\n".join(lines)
        body = self.typed_with_comment(
            {k: v for k, v in params.items() if k not in ("$defs", "definitions")}, 0)
        lines.append(f"{name}({body}){tail}")
        return "\n".join(lines)


def takes_item_keys(node: Any) -> bool:
    """Whether an array's innermost item carries the field comment's ITEM_KEYS."""
    return (isinstance(node, dict) and node.get("type") in ("string", "number", "integer")
            and not ({"anyOf", "oneOf", "allOf", "properties", "enum", "const", "$ref"}
                     & set(node)))


def _top_level_has(text: str, chars: str) -> bool:
    """Whether `text` has one of `chars` outside brackets, quotes and backticks."""
    depth, quote = 0, None
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"`":
            quote = c
        elif c in "({[<":
            depth += 1
        elif c in ")}]>":
            depth -= 1
        elif c in chars and depth == 0:
            return True
        i += 1
    return False


def schema_defs(schema: dict[str, Any]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            defs.update(schema[key])
    return defs


def render_schema(schema: dict[str, Any], name: str | None = None) -> str:
    """A JSON Schema (with its `$defs`/`definitions`) as type declarations."""
    renderer = Renderer()
    root_name = name or _safe_name(schema.get("title")) or "Root"
    root = {k: v for k, v in schema.items() if k not in ("$defs", "definitions")}
    blocks = [renderer.declaration(root_name, root)]
    for def_name, sub in schema_defs(schema).items():
        blocks.append(renderer.declaration(def_name, sub))
    return "\n".join(blocks)


def render_defs(defs: dict[str, Any]) -> str:
    """Named schemas (OpenAPI `components.schemas`) as type declarations."""
    renderer = Renderer()
    return "\n".join(renderer.declaration(n, s) for n, s in defs.items())


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


def render_tools(tools: list[dict[str, Any]]) -> str:
    renderer = Renderer()
    blocks: list[str] = []
    seen_defs: set[str] = set()
    for tool in tools:
        parts = tool_parts(tool)
        if parts is None:
            raise ValueError("not a tool definition")
        name, description, params, extras = parts
        if isinstance(params, dict):
            for def_name, sub in schema_defs(params).items():
                if def_name not in seen_defs:
                    seen_defs.add(def_name)
                    blocks.append(renderer.declaration(def_name, sub))
        blocks.append(renderer.tool(name, description, params, extras))
    return "\n".join(blocks)


def _safe_name(title: Any) -> str | None:
    if isinstance(title, str):
        name = re.sub(r"\W+", "", title.title())
        if name and IDENT.match(name) and name not in RESERVED:
            return name
    return None


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
    node = _simplify({k: v for k, v in schema.items() if k not in DROPPED})
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
            out[key] = _one_line(value)
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

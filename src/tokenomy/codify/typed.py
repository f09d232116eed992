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
  `[key: string]: T` for additionalProperties schemas; `[A, B]` draft-4 tuples.
- a `oneOf` union reads `A | B  // oneOf` (exactly one), an anyOf union `A | B`.
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

from tokenomy.codify.shapes import (
    DROPPED,
    PRIMITIVES,
    one_line,
    ref_name,
    schema_defs,
    simplify,
    tool_parts,
)

PRIM_NAMES = {v: k for k, v in PRIMITIVES.items()}
RESERVED = {*PRIM_NAMES, "any", "object", "array", "Record", "type"}
# Constraints that belong to a string/number value, never to an array holding it.
ITEM_KEYS = ("format", "minLength", "maxLength", "pattern", "minimum", "maximum",
             "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "contentEncoding",
             "contentMediaType")
FLAGS = ("oneOf", "uniqueItems", "deprecated", "readOnly", "writeOnly")
# Keywords that carry no meaning for a model writing JSON.
IDENT = re.compile(r"[A-Za-z_$][\w$]*\Z")
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


def _comment(items: list[str], description: str | None) -> str:
    parts = list(items)
    if description:
        text = one_line(description)
        # A description that reads like a constraint would be parsed as one.
        parts.append(f"description={render_value(text)}" if CONSTRAINT_START.match(text) else text)
    return ", ".join(parts)


def _is_object(schema: dict[str, Any]) -> bool:
    return "properties" in schema and isinstance(schema["properties"], dict)


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
        schema = simplify(schema)
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
            return " | ".join(str(PRIMITIVES.get(k, k)) for k in kind)
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
        schema = simplify(schema)
        rest = self.leftovers(schema, consumed)
        if keep_item_keys and takes_item_keys(schema):
            rest = {k: v for k, v in rest.items() if k not in ITEM_KEYS}
        if "description" in schema:
            rest["description"] = one_line(schema["description"])
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
        node = simplify(schema)
        while isinstance(node, dict) and node.get("type") == "array" and "items" in node:
            node = simplify(node["items"])
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
        sdict = simplify(schema) if isinstance(schema, dict) else schema
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
            lines.append(f"// {one_line(schema['description'])}")
            schema = {k: v for k, v in schema.items() if k != "description"}
        lines.append(f"type {name} = {self.typed_with_comment(schema, 0)}")
        return "\n".join(lines)

    def tool(self, name: str, description: str | None, params: Any,
             extra: dict[str, Any] | None = None) -> str:
        lines = [f"// {one_line(description)}"] if description else []
        tail = ""
        if extra:
            tail = "  // " + ", ".join(_constraint(k, v) for k, v in extra.items())
        params = simplify(params) if isinstance(params, dict) else params
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


def render_schema(schema: dict[str, Any], name: str | None = None) -> str:
    """A JSON Schema (with its `$defs`/`definitions`) as type declarations."""
    renderer = Renderer()
    root_name = name or _safe_name(schema.get("title")) or "Root"
    root = {k: v for k, v in schema.items() if k not in ("$defs", "definitions")}
    blocks = [renderer.declaration(root_name, root)]
    for def_name, sub in schema_defs(schema).items():
        blocks.append(renderer.declaration(def_name, sub))
    return "\n".join(blocks)


def render_model(model: Any) -> str:
    """A pydantic model class (as the SDK's structured outputs use) as typed definitions."""
    return render_schema(model.model_json_schema(), name=model.__name__)


def render_defs(defs: dict[str, Any]) -> str:
    """Named schemas (OpenAPI `components.schemas`) as type declarations."""
    renderer = Renderer()
    return "\n".join(renderer.declaration(n, s) for n, s in defs.items())


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

"""Reading typed definitions (see `typed.py`) back into JSON Schema.

The parser exists so the rendering is provably lossless: a schema rendered
and parsed back has the same fields, types, required set and constraints
(`canonical(parse_schema(render_schema(s))) == canonical(s)`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tokenomy.codify.shapes import schema_defs
from tokenomy.codify.typed import FLAGS, ITEM_KEYS, PRIM_NAMES, takes_item_keys

_NAME = re.compile(r"[A-Za-z_$][\w$.\-]*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_KEY = re.compile(r"([\w$\-]+)=")
_FLAG = re.compile(r"(" + "|".join(FLAGS) + r")(?=\s*(?:,|\)|\Z))")
_DECODER = json.JSONDecoder()


class TypedSyntaxError(ValueError):
    pass


@dataclass
class Document:
    types: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)


def parse_constraints(text: str, pos: int, closing: str | None) -> tuple[dict[str, Any], int]:
    """`k=v, flag, ...` from `pos`; in a comment (closing None) the rest is a description."""
    out: dict[str, Any] = {}
    while True:
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text) or (closing and text[pos] == closing):
            return out, pos
        key = _KEY.match(text, pos)
        flag = _FLAG.match(text, pos)
        if key:
            pos = key.end()
            name = key.group(1)
            if text.startswith("`", pos):
                end = text.index("`", pos + 1)
                out[name], pos = text[pos + 1:end], end + 1
            else:
                try:
                    out[name], pos = _DECODER.raw_decode(text, pos)
                except json.JSONDecodeError as exc:
                    raise TypedSyntaxError(f"bad value for {name!r} at {pos}") from exc
        elif flag:
            out[flag.group(1)], pos = True, flag.end()
        elif closing is None:
            out["description"] = text[pos:].strip()
            return out, len(text)
        else:
            raise TypedSyntaxError(f"expected k=v at {pos}: {text[pos:pos + 20]!r}")
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1


def _apply(node: dict[str, Any], items: dict[str, Any], field_comment: bool) -> None:
    """Attach constraints; a field comment's ITEM_KEYS go to the innermost array item."""
    inner = node
    while field_comment and inner.get("type") == "array" and isinstance(inner.get("items"), dict):
        inner = inner["items"]
    for key, value in items.items():
        if key == "oneOf" and value is True and "anyOf" in node:
            node["oneOf"] = node.pop("anyOf")
        elif key == "oneOf" and value is True and isinstance(node.get("type"), list):
            node["oneOf"] = [{"type": t} for t in node.pop("type")]
        elif key in ITEM_KEYS and inner is not node and takes_item_keys(inner):
            inner[key] = value
        else:
            node[key] = value


def _union(members: list[dict[str, Any]]) -> dict[str, Any]:
    if len(members) == 1:
        return members[0]
    literal = [m for m in members if set(m) == {"const"}]
    nulls = [m for m in members if m == {"type": "null"}]
    if literal and len(literal) + len(nulls) == len(members):
        return {"enum": [m["const"] if set(m) == {"const"} else None for m in members]}
    if all(set(m) == {"type"} and isinstance(m["type"], str) for m in members):
        return {"type": [m["type"] for m in members]}
    return {"anyOf": members}


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -- lexing -----------------------------------------------------------
    def _skip(self, newlines: bool = False) -> None:
        chars = " \t\r\n" if newlines else " \t\r"
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def peek(self, newlines: bool = False) -> str:
        self._skip(newlines)
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, token: str) -> None:
        self._skip()
        if not self.text.startswith(token, self.pos):
            got = self.text[self.pos:self.pos + 20]
            raise TypedSyntaxError(f"expected {token!r} at {self.pos}, got {got!r}")
        self.pos += len(token)

    def name(self) -> str:
        self._skip()
        match = _NAME.match(self.text, self.pos)
        if not match:
            raise TypedSyntaxError(f"expected a name at {self.pos}: {self.text[self.pos:][:20]!r}")
        self.pos = match.end()
        return match.group(0)

    def comment(self) -> dict[str, Any] | None:
        """A trailing `// ...` on this line, parsed into constraints."""
        self._skip()
        if not self.text.startswith("//", self.pos):
            return None
        end = self.text.find("\n", self.pos)
        end = len(self.text) if end < 0 else end
        body = self.text[self.pos + 2:end].strip()
        self.pos = end
        return parse_constraints(body, 0, None)[0]

    # -- types ------------------------------------------------------------
    def type(self) -> dict[str, Any]:
        members = [self.intersection()]
        while self.peek() == "|":
            self.pos += 1
            members.append(self.intersection())
        return _union(members)

    def intersection(self) -> dict[str, Any]:
        members = [self.postfix()]
        while self.peek() == "&":
            self.pos += 1
            members.append(self.postfix())
        return members[0] if len(members) == 1 else {"allOf": members}

    def postfix(self) -> dict[str, Any]:
        node = self.atom()
        while True:
            if self.text.startswith("[]", self.pos):
                self.pos += 2
                node = {"type": "array", "items": node}
            elif self.text.startswith("(", self.pos):
                items, end = parse_constraints(self.text, self.pos + 1, ")")
                self.pos = end + 1
                _apply(node, items, field_comment=False)
            else:
                return node

    def atom(self) -> dict[str, Any]:
        char = self.peek()
        if char == "(":
            self.pos += 1
            node = self.type()
            self.expect(")")
            return node
        if char == "{":
            return self.object()
        if char == "[":  # tuple: draft-4 `items: [A, B]`
            self.pos += 1
            members = [self.type()]
            while self.peek() == ",":
                self.pos += 1
                members.append(self.type())
            self.expect("]")
            return {"type": "array", "items": members}
        if char == '"' or _NUMBER.match(self.text, self.pos):
            value, self.pos = _DECODER.raw_decode(self.text, self.pos)
            return {"const": value}
        word = self.name()
        if word in ("true", "false"):
            return {"const": word == "true"}
        if word in PRIM_NAMES:
            return {"type": PRIM_NAMES[word]}
        if word == "any":
            return {}
        if word in ("object", "array"):
            return {"type": word}
        if word == "Record":
            self.expect("<")
            self.name()
            self.expect(",")
            value = self.type()
            self.expect(">")
            return {"type": "object", "additionalProperties": value}
        return {"$ref": f"#/$defs/{word}"}

    def object(self) -> dict[str, Any]:
        self.expect("{")
        node: dict[str, Any] = {"type": "object", "properties": {}}
        required: list[str] = []
        own = self.comment()
        while True:
            char = self.peek(newlines=True)
            if char == "}":
                self.pos += 1
                break
            if not char:
                raise TypedSyntaxError("unclosed object")
            if char == "[":
                self.expect("[")
                self.name()
                self.expect(":")
                self.name()
                self.expect("]")
                self.expect(":")
                node["additionalProperties"] = self.field_type()
                continue
            if char == '"':
                key, self.pos = _DECODER.raw_decode(self.text, self.pos)
            else:
                key = self.name()
            optional = self.peek() == "?"
            if optional:
                self.pos += 1
            self.expect(":")
            node["properties"][key] = self.field_type()
            if not optional:
                required.append(key)
        if required:
            node["required"] = required
        if own:
            _apply(node, own, field_comment=False)
        return node

    def field_type(self) -> dict[str, Any]:
        node = self.type()
        if self.peek() == ",":  # one-line objects: `{a: T, b?: U}`
            self.pos += 1
        note = self.comment()
        if note:
            _apply(node, note, field_comment=True)
        return node

    # -- documents --------------------------------------------------------
    def document(self) -> Document:
        doc = Document()
        pending: str | None = None
        while self.peek(newlines=True):
            if self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                end = len(self.text) if end < 0 else end
                pending = self.text[self.pos + 2:end].strip()
                self.pos = end
                continue
            word = self.name()
            if word == "type" and self.peek() != "(":
                name = self.name()
                self.expect("=")
                node = self.field_type()
                if pending:
                    node["description"] = pending
                doc.types[name] = node
            else:
                self.expect("(")
                params: dict[str, Any] = {}
                if self.peek() == "{":
                    params = self.object()
                self.expect(")")
                fn: dict[str, Any] = {"name": word}
                if pending:
                    fn["description"] = pending
                fn["parameters"] = params
                extra = self.comment()
                if extra:
                    fn.update(extra)
                doc.tools.append({"type": "function", "function": fn})
            pending = None
        return doc


def parse_typed(text: str) -> Document:
    return Parser(text).document()


def parse_schema(text: str) -> dict[str, Any]:
    """The first declaration is the root; the others become its `$defs`."""
    doc = parse_typed(text)
    if not doc.types:
        raise TypedSyntaxError("no type declarations")
    names = list(doc.types)
    root = dict(doc.types[names[0]])
    if len(names) > 1:
        root["$defs"] = {n: doc.types[n] for n in names[1:]}
    return root


def parse_tools(text: str) -> list[dict[str, Any]]:
    """OpenAI-shaped tools; shared `type` declarations go into each tool's `$defs`."""
    doc = parse_typed(text)
    if doc.types:
        for tool in doc.tools:
            params = tool["function"]["parameters"]
            if params and _refs(params) & set(doc.types):
                params["$defs"] = dict(doc.types)
    return doc.tools


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


__all__ = ["Document", "TypedSyntaxError", "parse_schema", "parse_tools", "parse_typed",
           "schema_defs"]

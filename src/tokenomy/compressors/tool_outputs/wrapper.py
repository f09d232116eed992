"""Agent wrappers around a command's output, kept byte for byte; only the bodies compress.

mini-swe-agent sends `<returncode>0</returncode>\\n<output>\\n...\\n</output>`, and
for long outputs `<output_head>`, `<elided_chars>` and `<output_tail>`; Claude Code
appends `<system-reminder>` blocks; Codex's shell tool starts with `Exit code: 0`,
`Wall time: ...` and `Output:` lines. Everything outside a body is kept as is, but for
one lossless rewrite (`compact_envelope`): mini-swe-agent's envelope, 16 tokens
around every output, becomes an `[exit 1]` line for a failure and nothing for a success.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

Position = Literal["whole", "head", "tail"]

_BODY = re.compile(r"(<(output|output_head|output_tail)>\n?)(.*?)(\n?</\2>)", re.DOTALL)
_CODEX_HEADER = re.compile(r"Exit code: -?\d+\nWall time: [^\n]*\n(?:Total output lines: \d+\n)?"
                           r"Output:\n")
_REMINDER = re.compile(r"\n*<system-reminder>.*?</system-reminder>\s*$", re.DOTALL)
_RETURNCODE = re.compile(r"<returncode>(-?\d{1,6})</returncode>\n")
_OUTPUT_OPEN, _OUTPUT_CLOSE = "<output>\n", "\n</output>"
_EMPTY_OUTPUT = "<output>\n</output>"


@dataclass
class Part:
    text: str
    body: bool  # False: wrapper text, never changed
    position: Position = "whole"  # where the body sits in the command's full output


def split(output: str) -> list[Part]:
    """The output as wrapper and body parts; concatenating their texts gives `output` back."""
    matches = list(_BODY.finditer(output))
    header = _CODEX_HEADER.match(output) if not matches else None
    if header:
        return [Part(output[: header.end()], False), Part(output[header.end():], True)]
    if not matches:
        reminder = _REMINDER.search(output)
        if reminder and reminder.start() > 0:
            return [Part(output[: reminder.start()], True),
                    Part(output[reminder.start():], False)]
        return [Part(output, True)]
    parts: list[Part] = []
    pos = 0
    for m in matches:
        parts.append(Part(output[pos : m.end(1)], False))
        tag = m.group(2)
        position: Position = "head" if tag == "output_head" else (
            "tail" if tag == "output_tail" else "whole")
        parts.append(Part(m.group(3), True, position))
        pos = m.start(4)
    parts.append(Part(output[pos:], False))
    return [p for p in parts if p.text or p.body]


def join(parts: list[Part]) -> str:
    return "".join(p.text for p in parts)


def json_envelope(output: str) -> dict[str, Any] | None:
    """A command's output inside a JSON object (`{"output": "...", "metadata": {...}}`, as
    Codex's shell tool once sent it): the object, when that is what `output` is."""
    if not output.startswith("{") or '"output"' not in output[:200]:
        return None
    try:
        value = json.loads(output)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("output"), str) \
            and set(value) <= {"output", "metadata"}:
        return value
    return None


def json_envelope_with(envelope: dict[str, Any], text: str) -> str:
    """The envelope with its output replaced, compact (deterministic, so memo-stable)."""
    return json.dumps({**envelope, "output": text}, ensure_ascii=False, separators=(",", ":"))


def has_envelope(output: str) -> bool:
    """Whether `output` opens with mini-swe-agent's `<returncode>` line (cheap: no regex)."""
    return output.startswith("<returncode>")


def compact_envelope(output: str) -> str | None:
    """mini-swe-agent's envelope in fewer tokens, nothing of what it says lost.

    `<returncode>1</returncode>\\n<output>\\nBODY\\n</output>` (16 tokens around every
    output, read again in every later call) becomes `[exit 1]\\nBODY`; a success says
    nothing but its output, the way Claude Code's and most shells' tools show one. An
    empty output says so: `[no output]`, `[exit 1; no output]`. A long output's harness
    parts (`<warning>`, `<output_head>`, `<elided_chars>`, `<output_tail>`) keep their
    tags: only the returncode line changes there. None: not that envelope.

    It can be read back: a first line `[exit N]` is the status, `[no output]` and
    `[exit N; no output]` are the empty outputs, anything else is a success's output.
    """
    head = _RETURNCODE.match(output)
    if head is None:
        return None
    code = head.group(1)
    rest = output[head.end():]
    if not rest.strip():
        return None
    empty = "[no output]" if code == "0" else f"[exit {code}; no output]"
    if rest == _EMPTY_OUTPUT:
        return empty
    if rest.startswith(_OUTPUT_OPEN) and rest.endswith(_OUTPUT_CLOSE) \
            and len(rest) >= len(_OUTPUT_OPEN) + len(_OUTPUT_CLOSE):
        rest = rest[len(_OUTPUT_OPEN): len(rest) - len(_OUTPUT_CLOSE)]
        if not rest.strip():  # never a blank text: Anthropic rejects one
            return empty
    # An output that itself opens like a status line ("[exit 1]", "[no output]") says
    # its own status first, so no output can pass for another's status.
    if code != "0" or rest.startswith(("[exit ", "[no output")):
        return f"[exit {code}]\n{rest}"
    return rest

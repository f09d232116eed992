"""Files an agent writes with a heredoc, as its own tool call, compressed like a file read.

Coding agents often create or rewrite a file in one shell command
(`cat > fix.py << 'EOF' ... EOF`). The file's text then sits in the
assistant turn and is re-read by the backend on every later call, although the
file itself is on disk. Once the call has run, the body can be compressed the
way a `cat` of that file would be (outline and what the task names kept), with
markers that say which `sed -n` range prints each elided run. Only heredocs
that write a file qualify: a script piped into `python -` exists nowhere else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from tokenomy.compressors.tool_outputs import SeenLines, compress_tool_output

_OPEN = re.compile(
    r"""(?:\bcat|\btee)\s*(?:(?:-a\s+)?(?:>>?\s*)?(?P<p1>[\w./~-]+)\s*)?<<-?\s*(?P<q>['"]?)(?P<tag>\w+)(?P=q)"""
    r"""(?:\s*>>?\s*(?P<p2>[\w./~-]+))?[^\n]*\n""")


@dataclass(frozen=True)
class Heredoc:
    path: str
    start: int  # offset of the body in the command
    end: int  # offset just after the body (before the terminator line)


def find_heredocs(command: str) -> list[Heredoc]:
    found: list[Heredoc] = []
    for match in _OPEN.finditer(command):
        path = match.group("p1") or match.group("p2")
        if not path:
            continue
        tag = match.group("tag")
        terminator = re.compile(rf"^\t*{re.escape(tag)}[ \t]*$", re.MULTILINE)
        close = terminator.search(command, match.end())
        if close is None:
            continue
        found.append(Heredoc(path, match.end(), close.start()))
    return found


def without_heredoc_bodies(command: str) -> str:
    """The command with each file-writing heredoc's body left out (its first line kept)."""
    out, position = [], 0
    for doc in find_heredocs(command):
        out.append(command[position:doc.start])
        position = doc.end
    out.append(command[position:])
    return "".join(out)


def compress_tool_call(arguments: str, *, model: str, min_tokens: int,
                       seen: SeenLines | None = None) -> tuple[str, int, int] | None:
    """The arguments with every file-writing heredoc body compressed, and the body tokens
    before and after; None when nothing changed (not JSON, no heredoc, too short)."""
    try:
        parsed = json.loads(arguments)
    except (ValueError, TypeError):
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("command"), str):
        return None
    command: str = parsed["command"]
    docs = find_heredocs(command)
    if not docs:
        return None
    before = after = 0
    out: list[str] = []
    position = 0
    for doc in docs:
        body = command[doc.start:doc.end]
        # No query: the agent wrote these lines, the names the task gives included, so
        # naming a task item says nothing about what it needs to see again.
        result = compress_tool_output(body, command=f"cat {doc.path}", tool_name=None,
                                      query="", model=model, min_tokens=min_tokens,
                                      seen=seen, authored=True)
        out.append(command[position:doc.start])
        text = result.text if result.text.endswith("\n") or not body.endswith("\n") \
            else result.text + "\n"
        out.append(text)
        before += result.tokens_before
        after += result.tokens_after
        position = doc.end
    out.append(command[position:])
    new_command = "".join(out)
    if new_command == command:
        return None
    parsed["command"] = new_command
    return json.dumps(parsed, ensure_ascii=False), before, after

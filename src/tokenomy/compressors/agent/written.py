"""Files the agent writes, in its own tool calls, compressed like a read of that file.

Coding agents create or rewrite a file in one tool call: a shell heredoc
(`cat > fix.py << 'EOF' ... EOF`), Claude Code's `Write` (`file_path`, `content`),
the text editor tool's `create` (`path`, `file_text`). The file's text then sits
in the assistant turn and is re-read by the backend on every later call,
although the file itself is on disk. Once the call has run, the text keeps its
outline (imports, definitions, the first line of each paragraph; see
`tool_outputs.read.paragraph_heads`), with markers that say which `sed -n`
range prints each elided run. Only text that lands in a file qualifies: a
script piped into `python -` or run with `python -c` exists nowhere else, and an
edit's old text (`str_replace`) is gone from the file; of those only passages
the conversation already holds fold (the agent's next version of a throwaway
script repeats most of the last one), like quotes in its text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from tokenomy.compressors.tool_outputs import SeenLines, compress_tool_output, fold_restated
from tokenomy.compressors.tool_outputs.marker import shell_word

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


# (path field, text field) of the file tools that write a whole file.
_WRITE_TOOL_FIELDS = (("file_path", "content"), ("path", "file_text"), ("path", "content"))


def compress_tool_call(arguments: str, *, model: str, min_tokens: int,
                       seen: SeenLines | None = None,
                       outline: bool = True) -> tuple[str, int, int] | None:
    """The arguments with the text of every file they write compressed, and that text's
    tokens before and after; None when nothing changed (not JSON, no file, too short).

    `outline`: a written file keeps its outline; else it stays whole but for the
    passages the conversation already holds (`[compression.agent] written`)."""
    try:
        parsed = json.loads(arguments)
    except (ValueError, TypeError):
        return None
    if not isinstance(parsed, dict):
        return None
    command = parsed.get("command")
    if isinstance(command, str) and command != "create":
        done = _command(command, model=model, min_tokens=min_tokens, seen=seen,
                        outline=outline)
        field = "command"
    else:
        done, field = None, ""
        for path_field, text_field in _WRITE_TOOL_FIELDS:
            path, text = parsed.get(path_field), parsed.get(text_field)
            if isinstance(path, str) and isinstance(text, str):
                done = _written(text, path, model=model, min_tokens=min_tokens, seen=seen,
                                outline=outline)
                field = text_field
                break
    if done is None:
        return None
    parsed[field] = done[0]
    return json.dumps(parsed, ensure_ascii=False), done[1], done[2]


def _written(text: str, path: str, *, model: str, min_tokens: int,
             seen: SeenLines | None, outline: bool) -> tuple[str, int, int] | None:
    if not outline:
        folded = fold_restated(text, seen=seen, model=model, min_tokens=min_tokens)
        return None if folded is None else (_newline_as(text, folded[0]), *folded[1:])
    # No query: the agent wrote these lines, the names the task gives included, so
    # naming a task item says nothing about what it needs to see again. The path may be
    # anything a file tool was given: one shell word, so a marker's command reads that
    # file and never runs what its name says.
    result = compress_tool_output(text, command=f"cat {shell_word(path)}", tool_name=None,
                                  query="", model=model, min_tokens=min_tokens, seen=seen,
                                  authored=True)
    if result.text == text:
        return None
    return _newline_as(text, result.text), result.tokens_before, result.tokens_after


def _newline_as(text: str, new: str) -> str:
    """`new` ending in a newline when `text` does (the heredoc's terminator needs its line)."""
    return new if new.endswith("\n") or not text.endswith("\n") else new + "\n"


def _command(command: str, *, model: str, min_tokens: int, seen: SeenLines | None,
             outline: bool) -> tuple[str, int, int] | None:
    """A shell command: each file it writes compressed (`_written`), and in the rest (an
    inline `python -c` script, a heredoc piped into a program) the runs of lines the
    conversation already holds folded."""
    before = after = 0
    out: list[str] = []
    position = 0

    def inline(text: str) -> str:
        nonlocal before, after
        folded = fold_restated(text, seen=seen, model=model, min_tokens=min_tokens) \
            if text.count("\n") > 1 else None
        if folded is None:
            return text
        before, after = before + folded[1], after + folded[2]
        return folded[0]

    for doc in find_heredocs(command):
        out.append(inline(command[position:doc.start]))
        body = command[doc.start:doc.end]
        done = _written(body, doc.path, model=model, min_tokens=min_tokens, seen=seen,
                        outline=outline)
        out.append(body if done is None else done[0])
        if done is not None:
            before += done[1]
            after += done[2]
        position = doc.end
    out.append(inline(command[position:]))
    new_command = "".join(out)
    return None if new_command == command else (new_command, before, after)

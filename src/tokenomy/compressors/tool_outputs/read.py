"""File reads (`cat`, `sed -n A,Bp`, `head`, `nl`, `cat -n`, Claude Code `Read`).

Lines keep their printed form (line number prefixes included); each line's real
file line number comes from its prefix (`cat -n`, `nl`, `Read`'s `  12→`) or from
the command (`sed -n A,Bp` starts at A, `cat` and `head` at 1), so a marker can
name the exact `sed -n` range to re-read. Source code goes through the outline
rules of `source.py`; other text (prose, config, data) is left to the generic
treatment, since there is no structure to tell what matters in it.
"""

from __future__ import annotations

import re
import shlex

from tokenomy.compressors.tool_outputs import fold
from tokenomy.compressors.tool_outputs.command import ReadSource
from tokenomy.compressors.tool_outputs.plan import Plan
from tokenomy.compressors.tool_outputs.prose import elide_prose, string_lines
from tokenomy.compressors.tool_outputs.query import QueryItems
from tokenomy.compressors.tool_outputs.source import elide_bodies

# `cat -n` / `nl`: "   12\tcode"; Claude Code Read: "    12→code".
_NUMBERED = re.compile(r"^\s*(\d{1,9})(?:\t|→)(.*)$")
# An indented structure (code, YAML) gets the outline rules; prose and flat config
# (Markdown, INI, TOML, logs) have no outline to keep, so they get the generic rules.
_CODE_EXT = frozenset([
    "yml", "yaml", "py", "pyi", "pyx", "js", "jsx", "ts", "tsx", "mjs", "cjs", "go", "rs", "java",
    "kt", "kts", "scala", "c", "h", "cc", "cpp", "cxx", "hpp", "hh", "cs", "swift", "m", "mm", "rb",
    "php", "pl", "pm", "lua", "r", "jl", "dart", "ex", "exs", "erl", "hs", "ml", "clj", "groovy",
    "sh", "bash", "zsh", "vue", "svelte", "sql"])
_PROSE_EXT = frozenset(["md", "rst", "txt", "adoc", "log", "csv", "tsv", "json", "toml", "ini",
                        "cfg", "lock"])
# A read of at most a screenful is exactly what the agent chose to look at: its code
# stays whole.
SCREENFUL = 50
# A file the agent wrote itself (a heredoc): it knows what it wrote, and the file is on
# disk; past a few lines only its outline stays (definitions, top-level statements).
AUTHORED_SCREENFUL = 10
_CODE_HINT = re.compile(r"^\s*(def |class |import |from \S+ import |function |func |fn |"
                        r"#include|package |public |private |const |let |var |return\b)")
_PATH_TOKEN = re.compile(r"[\w./~-]+\.\w{1,6}")


def numbered_lines(lines: list[str]) -> tuple[list[int | None], list[str]] | None:
    """Numbers and contents of `cat -n`/`nl`/`Read` lines, or None when not numbered."""
    numbers: list[int | None] = []
    contents: list[str] = []
    matched = 0
    for line in lines:
        m = _NUMBERED.match(line)
        if m:
            numbers.append(int(m.group(1)))
            contents.append(m.group(2))
            matched += 1
        else:
            numbers.append(None)
            contents.append(line if line.strip() else "")
    nonblank = sum(1 for line in lines if line.strip())
    if nonblank == 0 or matched < 0.8 * nonblank:
        return None
    return numbers, contents


def is_code(path: str | None, contents: list[str]) -> bool:
    ext = path.rsplit(".", 1)[-1].lower() if path and "." in path.rsplit("/", 1)[-1] else ""
    if ext in _CODE_EXT:
        return True
    if ext in _PROSE_EXT:
        return False
    sample = contents[:200]
    hints = sum(1 for c in sample if _CODE_HINT.match(c))
    return hints >= max(2, len(sample) // 40)


def path_in(command: str | None) -> str | None:
    """The file a read-like tool call names (Claude Code `Read`: its file_path, rendered
    as the second word of `Read '/repo/a b.py' offset=10`)."""
    if not command:
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    if len(words) >= 2 and "=" not in words[1] and not words[1].startswith("-"):
        return words[1]
    m = _PATH_TOKEN.search(command)
    return m.group(0) if m else None


def plan_read(lines: list[str], source: ReadSource | None, query: QueryItems, *,
              command: str | None, head_offset_known: bool, window: bool = False,
              authored: bool = False) -> Plan:
    """A plan for a file read: outline rules for code, generic rules for other text.

    `window`: the agent sized this read itself (`sed -n A,Bp`, `head -N`); its code is
    what it means to read and stays whole, only the prose around it may go.
    `authored`: the text is a file the agent wrote (see `AUTHORED_SCREENFUL`).
    """
    path = source.path if source else path_in(command)
    numbered = numbered_lines(lines)
    if numbered is not None:
        numbers, contents = numbered
    else:
        contents = list(lines)
        first = source.first_line if source and head_offset_known else None
        numbers = [first + i if first is not None else None for i in range(len(lines))]
    plan = Plan(lines, numbers=numbers, paths=[path] * len(lines))
    first = next((x for x in numbers if x is not None), None)
    ranged = first is None or first > 1
    code = is_code(path, contents)
    screenful = AUTHORED_SCREENFUL if authored else SCREENFUL
    if window or sum(1 for c in contents if c.strip()) <= screenful:
        if code:
            elide_prose(plan, contents, query, string_lines(contents, may_start_inside=ranged))
    elif code:
        elide_bodies(plan, contents, query, path=path, ranged=ranged)
        if authored:
            paragraph_heads(plan, contents)
    else:  # prose, flat config, logs: a log's errors are a report, so they stay
        fold.protect(plan, query)
        fold.standard(plan)
        return plan
    fold.protect(plan, query, errors=False)
    fold.long_lines(plan)  # minified or generated code: its ends say what it is
    return plan


_TOP_KEEP = re.compile(r"^(?:import |from \S+ import |def |class |async def |@|if __name__)")


def paragraph_heads(plan: Plan, contents: list[str]) -> None:
    """A script the agent wrote: of its top-level statements only the first line of each
    paragraph stays (usually the comment or call that says what the paragraph does),
    with imports and definitions; the agent wrote the rest and it is on disk."""
    previous_blank = True
    for i, text in enumerate(contents):
        blank = not text.strip()
        if not blank and plan.keep[i] and not text[:1].isspace() \
                and not previous_blank and not _TOP_KEEP.match(text):
            plan.drop(i)
        previous_blank = blank

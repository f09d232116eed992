"""Source code excerpts: keep the outline and what the query points at, elide other bodies.

Works on any indented language from the lines alone (no parser, so partial reads
such as `sed -n 640,690p` work too):

- kept: definition lines (decorators and multi-line signatures included), the
  first line of each docstring, imports, statements at module or class level, every
  line that names a query item (code lines with two lines around it), the lines
  around a line number the query points at (a traceback frame), and whole: a
  definition the query names, the definition a ranged read (`sed -n A,Bp`, grep
  context) starts at, and the lines a ranged read starts with inside a definition
  whose first line it did not print;
- elided: bodies of the other definitions, long docstrings, and the continuation
  lines of long literals, each run replaced by a marker that re-reads it.
"""

from __future__ import annotations

import re
from collections import defaultdict

from tokenomy.compressors.tool_outputs.plan import Plan
from tokenomy.compressors.tool_outputs.prose import elide_prose, string_lines
from tokenomy.compressors.tool_outputs.query import QueryItems

CONTEXT = 2  # lines kept around a line that names a query item
LINE_REF_CONTEXT = 5  # lines kept around a line number the query points at
_MAX_SIGNATURE_LINES = 25

_DEF = re.compile(
    r"^(?:(?:export|default|public|private|protected|internal|static|abstract|final|async|"
    r"override|inline|virtual|pub(?:\([\w:]+\))?|unsafe|extern|const)\s+)*"
    r"(?:def|function\*?|func|fn|sub|proc|method)\b")
_CLASS = re.compile(
    r"^(?:(?:export|default|public|private|protected|internal|static|abstract|final|sealed|"
    r"pub(?:\([\w:]+\))?|data|case)\s+)*"
    r"(?:class|interface|struct|enum|trait|impl|module|namespace|object|record|union)\b")
# A brace-language method without a keyword: `name(args) {`, not `if (...) {`.
_METHOD = re.compile(r"^(?!(?:if|for|while|switch|catch|else|do|try|return|with)\b)"
                     r"[\w$<>\[\],.*&: ]*\w\s*\([^;]*\)\s*(?::\s*[^{;]+)?\{\s*$")
_DECORATOR = re.compile(r"^@[\w.]+")
# Imports name what the file depends on, in one short line each: always kept.
_IMPORT = re.compile(r"^(?:from\s+\S+\s+import\b|import\s|#include\b|use\s+[\w:{]|require\(|"
                     r"(?:const|let|var)\s+[\w{}, ]+=\s*require\(|using\s+[\w.]+;|package\s)")
_TRIPLE = re.compile(r'"""|\'\'\'')


def _indent(text: str) -> int:
    """Leading whitespace width, a tab counting as four."""
    body = text.lstrip(" \t")
    return len(text[: len(text) - len(body)].expandtabs(4))


def _paren_delta(text: str) -> int:
    code = re.sub(r"'[^']*'|\"[^\"]*\"|#.*$", "", text)
    return code.count("(") + code.count("[") + code.count("{") - (
        code.count(")") + code.count("]") + code.count("}"))


def elide_bodies(plan: Plan, contents: list[str], query: QueryItems, *,
                 path: str | None = None, ranged: bool = False) -> None:
    """Mark what a code excerpt keeps; `contents` are the lines without number prefixes.

    `ranged`: the excerpt is a range the agent picked (`sed -n 793,890p`, grep context),
    not a whole file; a definition the range starts at is the one it aimed at.
    """
    n = len(contents)
    if n == 0:
        return
    blank = [not c.strip() for c in contents]
    indent = [_indent(c) for c in contents]
    stripped = [c.strip() for c in contents]
    orphans = _orphans(stripped, indent, blank) if ranged else 0
    # A range can start inside a docstring: its closing quotes would read as opening.
    in_string = string_lines(contents, may_start_inside=ranged)
    kind: list[str] = [""] * n  # "def" | "class" for definition lines
    signature_end = list(range(n))
    for i in range(n):
        if blank[i] or in_string[i]:
            continue
        s = stripped[i]
        if _DEF.match(s) or _METHOD.match(s):
            kind[i] = "def"
        elif _CLASS.match(s):
            kind[i] = "class"
        else:
            continue
        depth, j = 0, i
        while j < n and j - i < _MAX_SIGNATURE_LINES:
            depth += _paren_delta(contents[j])
            if depth <= 0 and (j > i or not s.endswith(("(", ",", "\\"))):
                break
            j += 1
        signature_end[i] = min(j, n - 1)

    # Each line's owner: the nearest earlier line with a smaller indent (its block header).
    parent: list[int | None] = [None] * n
    stack: list[int] = []
    for i in range(n):
        if blank[i] or in_string[i]:
            continue
        while stack and indent[stack[-1]] >= indent[i]:
            stack.pop()
        parent[i] = stack[-1] if stack else None
        stack.append(i)

    in_def = [False] * n
    named = [False] * n  # inside a definition the query names: kept whole
    header_of: dict[int, int] = {}  # decorator and signature lines -> their definition line
    for i in range(n):
        if kind[i]:
            start = i
            while start > 0 and _DECORATOR.match(stripped[start - 1]):
                start -= 1
            for k in range(start, signature_end[i] + 1):
                header_of.setdefault(k, i)
    names_cache: dict[int, bool] = {}
    header_lines: dict[int, list[int]] = defaultdict(list)
    for k, h in header_of.items():
        header_lines[h].append(k)
    aimed = _aimed_definition(kind, blank, header_of) if ranged else None

    def names_query(d: int) -> bool:
        if d not in names_cache:
            names_cache[d] = d == aimed or any(query.names(contents[k])
                                               for k in header_lines[d])
        return names_cache[d]

    for i in range(orphans):
        named[i] = True
    for i in range(orphans, n):
        if blank[i] or in_string[i]:
            continue
        p = parent[i]
        if p is None:
            in_def[i] = False
            continue
        p = header_of.get(p, p)
        named[i] = named[p] or (kind[p] == "def" and names_query(p))
        if i not in header_of:
            # Lines under a class are its statements; under anything else, a body or a
            # continuation (a long literal, a nested block).
            in_def[i] = in_def[p] or kind[p] != "class"
    # Blank and string lines belong to the block around them.
    last = None
    for i in range(n):
        if blank[i] or in_string[i]:
            if last is not None:
                in_def[i] = in_def[last] or in_string[i]
                named[i] = named[last]
            else:
                in_def[i] = in_string[i]
        else:
            last = i

    refs = query.lines_for(path)
    keep = [False] * n
    for i in range(n):
        statement = not in_def[i] and not in_string[i]
        imported = not in_string[i] and _IMPORT.match(stripped[i]) is not None
        if i in header_of or named[i] or statement or imported:
            keep[i] = True
    for i in range(n):
        if not blank[i] and query.hit(contents[i]):
            plan.protect(i)
            # Code around a named line explains it; prose (a docstring) does not need it.
            context = 0 if in_string[i] else CONTEXT
            for k in range(max(0, i - context), min(n, i + context + 1)):
                keep[k] = True
        number = plan.numbers[i]
        if refs and number is not None and number in refs:
            for k in range(max(0, i - LINE_REF_CONTEXT), min(n, i + LINE_REF_CONTEXT + 1)):
                keep[k] = True
    # The first line of a docstring is the summary: keep it.
    for i in range(n):
        if kind[i] and signature_end[i] + 1 < n:
            j = signature_end[i] + 1
            while j < n and blank[j]:
                j += 1
            if j < n and _TRIPLE.match(stripped[j]):
                keep[j] = True
    for i in range(n):
        if not keep[i]:
            plan.drop(i)
    elide_prose(plan, contents, query, in_string)


# A range that starts this close before a definition was aimed at it (a decorator or a
# comment line or two of slack).
_AIM_LINES = 3


def _aimed_definition(kind: list[str], blank: list[bool],
                      header_of: dict[int, int]) -> int | None:
    """The definition a ranged read starts at, if it starts at (or just before) one."""
    seen = 0
    for i, k in enumerate(kind):
        if blank[i]:
            continue
        if k == "def" or (i in header_of and kind[header_of[i]] == "def"):
            return header_of.get(i, i)
        seen += 1
        if seen >= _AIM_LINES:
            return None
    return None


def _orphans(stripped: list[str], indent: list[int], blank: list[bool]) -> int:
    """How many leading lines of a range continue a definition whose first line was not
    printed (`sed -n 500,600p` starting inside a method): up to the first definition at
    most as indented as the range's first line. Which definition they belong to cannot
    be told, and the agent started reading there on purpose, so they stay."""
    first = next((i for i in range(len(stripped)) if not blank[i]), None)
    if first is None or indent[first] == 0:
        return 0
    for i in range(first, len(stripped)):
        if (not blank[i] and indent[i] <= indent[first]
                and (_DEF.match(stripped[i]) or _CLASS.match(stripped[i])
                     or _DECORATOR.match(stripped[i]))):
            return i
    return len(stripped)

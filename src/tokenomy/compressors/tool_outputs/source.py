"""Source code excerpts: keep the outline and what the query points at, elide other bodies.

Works on any indented language from the lines alone (no parser, so partial reads
such as `sed -n 640,690p` work too):

- kept: definition lines (decorators and multi-line signatures included), the
  first line of each docstring, statements at module or class level, every line
  that names a query item with two lines around it, the lines around a line number
  the query points at (a traceback frame), and the whole body of a definition the
  query names;
- elided: bodies of the other definitions, long docstrings, and the continuation
  lines of long literals, each run replaced by a marker that re-reads it.
"""

from __future__ import annotations

import re

from tokenomy.compressors.tool_outputs.plan import Plan
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


def _string_lines(contents: list[str]) -> list[bool]:
    """True for lines that lie inside a triple-quoted string opened on an earlier line."""
    inside = [False] * len(contents)
    open_quote: str | None = None
    for i, text in enumerate(contents):
        inside[i] = open_quote is not None
        for m in _TRIPLE.finditer(text):
            quote = m.group(0)
            if open_quote is None:
                open_quote = quote
            elif quote == open_quote:
                open_quote = None
    return inside


def _paren_delta(text: str) -> int:
    code = re.sub(r"'[^']*'|\"[^\"]*\"|#.*$", "", text)
    return code.count("(") + code.count("[") + code.count("{") - (
        code.count(")") + code.count("]") + code.count("}"))


def elide_bodies(plan: Plan, contents: list[str], query: QueryItems, *,
                 path: str | None = None) -> None:
    """Mark what a code excerpt keeps; `contents` are the lines without number prefixes."""
    n = len(contents)
    if n == 0:
        return
    in_string = _string_lines(contents)
    blank = [not c.strip() for c in contents]
    indent = [_indent(c) for c in contents]
    stripped = [c.strip() for c in contents]
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

    base = min((indent[i] for i in range(n) if not blank[i] and not in_string[i]), default=0)
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

    def names_query(d: int) -> bool:
        if d not in names_cache:
            names_cache[d] = any(query.hit(contents[k]) for k, h in header_of.items() if h == d)
        return names_cache[d]

    for i in range(n):
        if blank[i] or in_string[i]:
            continue
        p = parent[i]
        if p is None:
            # Before any visible header and deeper than the excerpt's base: the middle of a
            # definition whose first line was not printed.
            in_def[i] = i not in header_of and indent[i] > base
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


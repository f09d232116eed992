"""Prose inside source code: docstrings past their summary line, and comment blocks.

An agent reads code for its code: the names it calls, the branches it takes, the
lines it will edit. The prose around it (numpy-style parameter sections,
references, examples, license headers, long explanatory comments) is most of
the text of many files and is rarely what the agent uses next, so past its first
line it goes, with a marker that re-reads it. The first line stays (a
docstring's summary says what the definition does; a comment block's first line
says what follows), and so does every line that names a query item.

Where a string starts and ends cannot be read from a range that begins inside a
docstring (`sed -n 250,350p`): its closing quotes look like opening ones. So the
string state is taken from the reading that fits the lines best: prose inside
strings, code outside them.
"""

from __future__ import annotations

import re

from tokenomy.compressors.tool_outputs.plan import Plan
from tokenomy.compressors.tool_outputs.query import QueryItems

DOCSTRING = "docstring lines"
COMMENTS = "comment lines"

_TRIPLE = re.compile(r'"""|\'\'\'')
_DOC_OPEN = re.compile(r'^[rRuUbBfF]{0,2}("""|\'\'\')')
_KEYWORD = re.compile(
    r"^(?:def|class|return|if|elif|else|for|while|try|except|finally|with|import|from|raise|"
    r"yield|assert|pass|break|continue|lambda|async|await|del|global|nonlocal|print)\b")
_ASSIGN = re.compile(r"^[\w.\[\]'\", ]+\s*(?:[-+*/%|&^]|//|\*\*)?=(?!=)")
_CALL_LINE = re.compile(r"^[\w.]+\(.*[),(\[{]$")
_BRACKETS = re.compile(r"^[)\]}][)\]},:;]*$")
_ANNOTATION = re.compile(r"^\w+\s*:\s*[\w.\[\], |]+(?:\s*=.*)?$")  # `value: Optional[int] = 0`
_HEADER = re.compile(r"^(?:async\s+)?(?:def|class)\s|^@\w|^(?:import|from)\s")
_DEFINES = re.compile(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)")
_WORDS = re.compile(r"[A-Za-z]{2,}")
# Comment lines in the common languages; C preprocessor lines and shebangs are code.
_COMMENT = re.compile(r"^(?:#(?!include|define|if|ifdef|ifndef|endif|else|elif|pragma|undef|!)"
                      r"|//|/\*|\*(?:\s|/|$))")


def code_like(text: str) -> bool:
    s = text.strip()
    return bool(_KEYWORD.match(s) or _ASSIGN.match(s) or _CALL_LINE.match(s)
                or _ANNOTATION.match(s) or _BRACKETS.match(s) or s.startswith("@")
                or s.endswith((":", "{", ";")))


def prose_like(text: str) -> bool:
    s = text.strip()
    words = _WORDS.findall(s)
    return len(words) >= 3 and sum(map(len, words)) >= 0.6 * len(s) and not code_like(s)


def _scan(contents: list[str], open_quote: str | None) -> list[bool]:
    """True for lines inside a triple-quoted string opened on an earlier line, when the
    excerpt starts inside a string opened with `open_quote` (None: outside any)."""
    inside = [False] * len(contents)
    for i, text in enumerate(contents):
        inside[i] = open_quote is not None
        for m in _TRIPLE.finditer(text):
            quote = m.group(0)
            if open_quote is None:
                open_quote = quote
            elif quote == open_quote:
                open_quote = None
    return inside


def string_lines(contents: list[str], *, may_start_inside: bool = True) -> list[bool]:
    """Which lines lie inside a triple-quoted string opened on an earlier line.

    `may_start_inside`: the excerpt may begin inside a string (a range, grep context);
    then of the three readings (outside, inside a \"\"\" string, inside a ''' string)
    the one with the most prose inside strings and code outside them is taken.
    """
    readings = [_scan(contents, None)]
    first = next((text.strip() for text in contents if text.strip()), "")
    if may_start_inside and not _HEADER.match(first):  # a range that starts at a definition
        # Starting inside a string is a reading only if that string closes in the excerpt.
        quotes = {m.group(0) for text in contents for m in _TRIPLE.finditer(text)}
        readings += [_scan(contents, quote) for quote in ('"""', "'''") if quote in quotes]
    if len(readings) == 1:
        return readings[0]

    def fit(inside: list[bool]) -> int:
        # Comments are prose outside strings: they say nothing about where strings are.
        score = 0
        for text, is_string in zip(contents, inside, strict=True):
            if not text.strip() or _TRIPLE.search(text) or _COMMENT.match(text.strip()):
                continue
            if prose_like(text):
                score += 1 if is_string else -1
            elif code_like(text):
                score += -1 if is_string else 1
        return score

    # Starting outside is the usual case: another reading must fit clearly better.
    scores = [fit(inside) + (2 if k == 0 else 0) for k, inside in enumerate(readings)]
    return readings[scores.index(max(scores))]


def elide_prose(plan: Plan, contents: list[str], query: QueryItems,
                in_string: list[bool] | None = None) -> None:
    """Drop docstring lines past each docstring's summary, and comment blocks past their
    first line; lines naming a query item stay (`plan.drop` never drops protected ones)."""
    n = len(contents)
    if in_string is None:
        in_string = string_lines(contents)
    stripped = [c.strip() for c in contents]
    i = 0
    while i < n:
        if in_string[i]:
            # A docstring body: from here to its closing line. Its opening line (the one
            # before, when it is in the excerpt) holds the summary, or it is a bare quote
            # and the summary is this first line.
            j = i
            while j < n and in_string[j]:
                j += 1
            start = i
            opener = stripped[i - 1] if i > 0 else ""
            docstring = i == 0 or _DOC_OPEN.match(opener) is not None
            if i > 0 and _DOC_OPEN.fullmatch(opener):
                start = _next_text(stripped, i, j) + 1  # bare `"""`: keep the summary
            if docstring and not _documents_named(stripped, i, query):
                for k in range(start, j):
                    if plan.keep[k] and not query.hit(contents[k]):
                        plan.drop(k, DOCSTRING)
            i = j
            continue
        if stripped[i] and _COMMENT.match(stripped[i]):
            j = i
            while j < n and (not stripped[j] or (_COMMENT.match(stripped[j])
                                                 and not in_string[j])):
                j += 1
            while j > i and not stripped[j - 1]:
                j -= 1
            for k in range(i + 1, j):
                if plan.keep[k] and not query.hit(contents[k]):
                    plan.drop(k, COMMENTS)
            i = max(j, i + 1)
            continue
        i += 1


def _documents_named(stripped: list[str], body: int, query: QueryItems) -> bool:
    """The docstring whose body starts at `body` documents a definition the query names
    (the agent searched for it, the task is about it): its contract is what is read."""
    k = body - 1
    if k >= 0 and _DEFINES.match(stripped[k]) is None:  # the opener on its own line
        k -= 1
        while k >= 0 and not stripped[k]:
            k -= 1
    m = _DEFINES.match(stripped[k]) if k >= 0 else None
    return m is not None and m.group(1) in query.hits(stripped[k])


def _next_text(stripped: list[str], start: int, end: int) -> int:
    for k in range(start, end):
        if stripped[k]:
            return k
    return start

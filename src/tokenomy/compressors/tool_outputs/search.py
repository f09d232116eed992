"""Search and listing outputs: grep/rg, find, ls -l, git status.

Paths and match lines are what a search is for, so they stay; what goes is
repetition and columns nobody reads:

- `grep -rn` / `rg` lines of one file are grouped under the path once (ripgrep's
  own `--heading` layout), so the path is not repeated per match;
- context excerpts (`-A/-B/-C`) are code: the outline rules of `source.py` apply
  inside each excerpt, with real line numbers from the `12-`/`12:` prefixes;
- with many matches, the ones that name a query item stay, with the first few of
  each file, and a count of the rest plus the command that prints them;
- `ls -l` keeps type, size and name (permissions, links, owner, group and date go);
- `git status` loses its `(use "git add" ...)` hints.
"""

from __future__ import annotations

import re

from tokenomy.compressors.tool_outputs import fold
from tokenomy.compressors.tool_outputs.plan import Plan
from tokenomy.compressors.tool_outputs.prose import elide_prose
from tokenomy.compressors.tool_outputs.query import QueryItems
from tokenomy.compressors.tool_outputs.read import SCREENFUL, is_code
from tokenomy.compressors.tool_outputs.source import elide_bodies

# Past this many match lines a search is a survey: keep the relevant ones.
MANY_MATCHES = 60
FIRST_PER_FILE = 3

_LS_LONG = re.compile(
    r"^([-dlcbps])[rwxsStTl@+.-]{9}[@+.]?\s+\d+\s+\S+\s+\S+\s+([\d,.]+[KMGTP]?|\d+,\s*\d+)\s+"
    r"(\w{3}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4})|\d{4}-\d{2}-\d{2}(?:\s+\d{2}:\d{2}(?::\d{2})?)?)"
    r"\s+(.*)$")
# `path:12:text` (a match) or `path-12-text` (context). Tried on a line's head only: on
# a long unbroken word the pattern backtracks in quadratic time, and no path is longer.
_PREFIXED = re.compile(r"^(?P<path>[^\s:][^:]*?\.?[\w-]*)(?P<sep>[:-])(?P<num>\d{1,9})(?P=sep)")
_PREFIX_CHARS = 300
_PATH_ONLY = re.compile(r"^(?P<path>[^\s:]+?)(?P<sep>:)(?P<text>.*)$")
_NUMBERED = re.compile(r"^(?P<num>\d{1,9})(?P<sep>[:-])(?P<text>.*)$")
_GIT_HINT = re.compile(r'^\s*\(use "git .*"\s*(to|and)\b.*\)\s*$|^\s*\(use "git ')


def _prefixed(line: str) -> re.Match[str] | None:
    """grep's `path:12:` / `path-12-` prefix of a line (its text follows `match.end()`)."""
    return _PREFIXED.match(line[:_PREFIX_CHARS])


def ls_long(plan: Plan) -> bool:
    """`ls -l` lines as `name/` (directories), `name  size` (files), `name -> target`."""
    hits = 0
    for i, line in enumerate(plan.lines):
        m = _LS_LONG.match(line)
        if not m:
            continue
        hits += 1
        kind, size, name = m.group(1), m.group(2), m.group(4)
        why = "ls -l permissions, owner and date columns (directories end in /)"
        if kind == "d":
            plan.show(i, f"{name}/", why)
        elif kind == "l":
            plan.show(i, name, why)
        else:
            plan.show(i, f"{name}  {size}", why)
    return hits > 0


def git_status(plan: Plan) -> None:
    for i, line in enumerate(plan.lines):
        if _GIT_HINT.match(line):
            plan.drop(i, "git hint lines")


def _is_pathish(path: str) -> bool:
    return "/" in path or bool(re.search(r"\.\w{1,6}$", path))


def grep_lines(plan: Plan, query: QueryItems, *, single_path: str | None,
               context: bool, window: bool = False) -> bool:
    """Group, excerpt and cap grep/rg output; False when the lines are not grep output.

    `window`: the agent sized the context itself (`-A 30`): the excerpts' code stays,
    only their prose may go.
    """
    n = len(plan)
    paths: list[str | None] = [None] * n
    numbers: list[int | None] = [None] * n
    texts: list[str] = list(plan.lines)
    is_match = [False] * n
    parsed = 0
    for i, line in enumerate(plan.lines):
        if line == "--" or not line.strip():
            continue
        m = _prefixed(line)
        if m and _is_pathish(m.group("path")):
            paths[i], numbers[i] = m.group("path"), int(m.group("num"))
            texts[i], is_match[i] = line[m.end():], m.group("sep") == ":"
            parsed += 1
            continue
        m = _NUMBERED.match(line)
        if m and single_path is not None:
            paths[i], numbers[i] = single_path, int(m.group("num"))
            texts[i], is_match[i] = m.group("text"), m.group("sep") == ":"
            parsed += 1
            continue
        m = _PATH_ONLY.match(line)
        if m and _is_pathish(m.group("path")):
            paths[i], texts[i], is_match[i] = m.group("path"), m.group("text"), True
            parsed += 1
            continue
    nonblank = sum(1 for line in plan.lines if line.strip() and line != "--")
    if nonblank == 0 or parsed < 0.8 * nonblank:
        return False
    plan.numbers = numbers
    plan.paths = paths
    for i in range(n):
        if query.hit(plan.lines[i]):
            plan.protect(i)
    if context:
        _excerpts(plan, texts, query, window=window)
    else:
        _cap_matches(plan, is_match)
    _group_paths(plan, texts, single_path)
    return True


def _excerpts(plan: Plan, texts: list[str], query: QueryItems, *, window: bool) -> None:
    """Apply the code outline rules inside each `--`-separated excerpt of one file.

    An excerpt of at most a screenful, or in a window the agent sized, is the context
    it asked for: its code stays, only its prose (docstrings, comment blocks) may go.
    """
    n = len(plan)
    start = 0
    while start < n:
        end = start
        while end < n and plan.lines[end] != "--" and (
                plan.paths[end] == plan.paths[start] or plan.paths[end] is None):
            end += 1
        if end > start and is_code(plan.paths[start], texts[start:end]):
            sub = Plan(plan.lines[start:end], numbers=plan.numbers[start:end])
            for k in range(start, end):
                if plan.protected[k]:
                    sub.protect(k - start)
            if window or end - start <= SCREENFUL:
                elide_prose(sub, texts[start:end], query)
            else:
                elide_bodies(sub, texts[start:end], query, path=plan.paths[start],
                             ranged=True)
            for k in range(start, end):
                if not sub.keep[k - start]:
                    plan.drop(k, sub.why[k - start])
                elif sub.protected[k - start]:
                    plan.protect(k)
        start = end + 1 if end == start else end
        while start < n and plan.lines[start] == "--":
            start += 1


def _cap_matches(plan: Plan, is_match: list[bool]) -> None:
    if sum(is_match) <= MANY_MATCHES:
        return
    seen: dict[str | None, int] = {}
    for i in range(len(plan)):
        if not is_match[i]:
            continue
        count = seen.get(plan.paths[i], 0)
        seen[plan.paths[i]] = count + 1
        if count >= FIRST_PER_FILE:
            plan.drop(i, "matches")


def _group_paths(plan: Plan, texts: list[str], single_path: str | None) -> None:
    """Print a file's path once above its lines instead of on every line."""
    current: str | None = None
    for i in range(len(plan)):
        path = plan.paths[i]
        if path is None or not plan.keep[i]:
            if plan.lines[i] == "--":
                current = None if single_path is None else current
            continue
        number = plan.numbers[i]
        prefixed = _prefixed(plan.lines[i])
        sep = ":" if prefixed is None else prefixed.group("sep")
        body = f"{number}{sep}{texts[i]}" if number is not None else texts[i]
        if path == single_path and _NUMBERED.match(plan.lines[i]):
            continue  # already without a path
        if path != current:
            current = path
            plan.show(i, f"{path}\n{body}")
        else:
            plan.show(i, body)


def paths_list(plan: Plan, query: QueryItems) -> None:
    """`find`/`fd`/`ls -R` path lists: all paths stay unless there are very many."""
    for i, line in enumerate(plan.lines):
        if query.hit(line):
            plan.protect(i)
    if len(plan) > MANY_MATCHES * 2:
        fold.head_tail(plan, head=MANY_MATCHES, tail=MANY_MATCHES // 2)

"""Line treatments every command output shares: repeats, progress, look-alikes, head/tail.

- a line repeated back to back stays once, with a count;
- progress (carriage-return redraws, bars, percentages) keeps its last state;
- a run of look-alike lines (same text once numbers and hashes are masked, e.g.
  `Downloading x-1.2.whl (10 kB)` x 40) keeps its first two and last line;
- a very long output keeps its head and tail; protected lines (query items,
  errors) stay wherever they are;
- a diffstat (`git show --stat`) keeps each file and its count of changed lines,
  not the column padding and the +/- bar drawn to scale.
"""

from __future__ import annotations

import re

from tokenomy.compressors.tool_outputs.plan import REPEATED, SHOWN_BEFORE, Plan
from tokenomy.compressors.tool_outputs.query import QueryItems
from tokenomy.compressors.tool_outputs.seen import SeenLines, key
from tokenomy.compressors.tool_outputs.signals import is_error, is_frame, is_warning

# Look-alike runs shorter than this are a list the reader wants whole.
SIMILAR_RUN = 8
# A passage already shown goes when it has at least this many substantial lines (and
# the lines cost more than the marker: see `plan.render`).
SEEN_RUN = 2
# A line longer than this (minified code, a data dump) keeps its two ends.
LONG_LINE = 2000
# A screenful at each end of a long output: what a person scrolls to first.
HEAD_LINES = 60
TAIL_LINES = 60

_PROGRESS = re.compile(
    r"\d{1,3}(?:\.\d+)?%\s*\|"           # tqdm: " 45%|████▌ |"
    r"|[█▉▊▋▌▍▎▏━─#=]{6,}"               # bars
    r"|\[\s*[=#>-]+\s*\]"                # [=====>   ]
    r"|^\s*\d{1,3}(?:\.\d+)?%\s*$"       # a bare percentage
    r"|\b\d+(?:\.\d+)?\s*[kKMG]?i?B\s*/\s*\d+(?:\.\d+)?\s*[kKMG]?i?B\b"  # 1.2/3.4 MB
)
# ` astroid/builder.py      |  3 +++` (git --stat, diffstat); binary files keep their line.
# Only short lines are tried: on a long run of spaces the match would take quadratic time.
_DIFFSTAT = re.compile(r"^ (\S.*?)\s+\|\s+(\d+) ?[+-]*$")
_DIFFSTAT_MAX_CHARS = 400
DIFFSTAT_BARS = "diffstat padding and +/- bars"
_MASK = re.compile(r"0x[0-9a-fA-F]+|\b[0-9a-f]{7,40}\b|\d+(?:\.\d+)*")


def carriage_returns(plan: Plan) -> None:
    """A line redrawn with \\r shows only its final state."""
    for i, line in enumerate(plan.lines):
        if "\r" in line:
            last = [seg for seg in line.split("\r") if seg.strip()]
            plan.show(i, last[-1] if last else "")


def progress(plan: Plan) -> None:
    """In a run of progress lines, keep the last one."""
    n = len(plan)
    i = 0
    while i < n:
        if not _PROGRESS.search(plan.shown[i]):
            i += 1
            continue
        j = i
        while j < n and _PROGRESS.search(plan.shown[j]):
            j += 1
        for k in range(i, j - 1):
            plan.drop(k, "progress lines")
        i = j


def repeats(plan: Plan) -> None:
    """Back-to-back copies of a line (or of a block of up to 4 lines) stay once."""
    n = len(plan)
    text = [s.rstrip() for s in plan.shown]
    i = 0
    while i < n:
        best = 0
        for period in (1, 2, 3, 4):
            j = i + period
            while j + period <= n and text[j : j + period] == text[i : i + period]:
                j += period
            copies = (j - i) // period - 1
            if copies >= 1 and copies * period > best and any(text[i : i + period]):
                best = copies * period
                best_period = period
        if best:
            for k in range(i + best_period, i + best_period + best):
                plan.drop(k, "repeated lines (copies of the lines above)")
            i += best_period + best
        else:
            i += 1


def template(line: str) -> str:
    return _MASK.sub("0", line.strip())


def similar(plan: Plan, *, min_run: int = SIMILAR_RUN) -> None:
    """A long run of look-alike lines keeps its first two and its last line."""
    n = len(plan)
    shapes = [template(s) if s.strip() else "" for s in plan.shown]
    i = 0
    while i < n:
        j = i + 1
        while j < n and shapes[j] and shapes[j] == shapes[i] and plan.keep[j]:
            j += 1
        if shapes[i] and j - i >= min_run:
            for k in range(i + 2, j - 1):
                plan.drop(k, "similar lines")
        i = max(j, i + 1)


def head_tail(plan: Plan, *, head: int = HEAD_LINES, tail: int = TAIL_LINES) -> None:
    """A long output keeps its first `head` and last `tail` lines (and protected ones).

    Everything between goes as plain lines, also what an earlier rule already dropped,
    so the middle reads as one marker per stretch between protected lines.
    """
    kept = [i for i in range(len(plan)) if plan.keep[i]]
    if len(kept) <= head + tail:
        return
    for i in range(kept[head], kept[len(kept) - tail]):
        if not plan.protected[i] and not _near_protected(plan, i) and i not in plan.silent:
            plan.drop(i)


def _near_protected(plan: Plan, i: int) -> bool:
    return any(plan.protected[k] for k in (i - 1, i + 1) if 0 <= k < len(plan))


def protect(plan: Plan, query: QueryItems, *, errors: bool = True) -> None:
    """Lines naming a query item, and (for command output) error lines, never go."""
    for i, line in enumerate(plan.lines):
        if (errors and is_error(line)) or query.hit(line):
            plan.protect(i)
        elif errors and is_warning(line):
            plan.protect(i, soft=True)


def long_lines(plan: Plan, *, limit: int = LONG_LINE) -> None:
    """An unprotected line over `limit` characters keeps its first and last parts."""
    for i, line in enumerate(plan.shown):
        if len(line) > limit and not plan.protected[i]:
            plan.cuts[i] = (limit // 2, limit // 4)


def diffstat(plan: Plan, *, min_lines: int = 3) -> None:
    """A diffstat block shows `path | count` per file: the bar only redraws the count."""
    found = [(i, m) for i, line in enumerate(plan.shown)
             if len(line) <= _DIFFSTAT_MAX_CHARS and "|" in line
             and (m := _DIFFSTAT.match(line))]
    if len(found) < min_lines:
        return
    for i, m in found:
        plan.show(i, f" {m.group(1)} | {m.group(2)}", DIFFSTAT_BARS)


def standard(plan: Plan) -> None:
    """The shared treatments, in order: diffstat bars, redraws, progress, repeats,
    look-alikes, length."""
    diffstat(plan)
    long_lines(plan)
    carriage_returns(plan)
    progress(plan)
    repeats(plan)
    similar(plan)
    head_tail(plan)


def seen_before(plan: Plan, seen: SeenLines, *, min_lines: int = SEEN_RUN,
                why: str = SHOWN_BEFORE) -> None:
    """Drop runs of lines the conversation already holds (short lines ride along).

    A warning, or a traceback's frame lines, already shown verbatim need not be shown
    again (the exception line itself stays: it says the failure is the same one).
    """
    n = len(plan)
    for i in range(n):
        # A line the conversation already holds names nothing new (a query item it names
        # was named before), so protection does not keep it, except a failure's own line.
        if plan.protected[i] and plan.lines[i] in seen \
                and (not is_error(plan.lines[i]) or is_frame(plan.lines[i])):
            plan.protected[i] = False
    i = 0
    while i < n:
        if not (plan.keep[i] and plan.lines[i] in seen) or plan.protected[i]:
            i += 1
            continue
        j, substantial, end = i, 0, i
        while j < n and not plan.protected[j]:
            line = plan.lines[j]
            if key(line):
                if line not in seen:
                    break
                substantial += 1
                end = j + 1
            j += 1
        if substantial >= min_lines:
            for k in range(i, end):
                plan.drop(k, why)
        i = max(end, i + 1)


def repeated_within(plan: Plan, *, min_lines: int = SEEN_RUN) -> None:
    """A passage an output prints twice (the same traceback for two cases) stays once."""
    n = len(plan)
    substantial_lines = [k for k in map(key, plan.lines) if k]
    if len(set(substantial_lines)) == len(substantial_lines):
        return  # every substantial line is printed once: nothing repeats
    # Fold against the lines above each position only: the first copy always stays.
    index = SeenLines()
    i = 0
    while i < n:
        if not key(plan.lines[i]) or plan.lines[i] not in index:
            index.add(plan.lines[i])
            i += 1
            continue
        j, substantial, end = i, 0, i
        while j < n:
            line = plan.lines[j]
            if key(line):
                if line not in index:
                    break
                substantial += 1
                end = j + 1
            j += 1
        if substantial >= min_lines:
            for k in range(i, end):
                if not is_error(plan.lines[k]) or is_frame(plan.lines[k]):
                    plan.protected[k] = False
                plan.drop(k, REPEATED)
        for k in range(i, max(end, i + 1)):
            index.add(plan.lines[k])
        i = max(end, i + 1)

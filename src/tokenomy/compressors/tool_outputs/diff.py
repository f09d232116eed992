"""Unified diffs (`git diff`, `git show`, `diff -u`, a saved `.patch`).

File headers, hunk headers and every changed line stay; unchanged context keeps
two lines on each side of a change (wider context from `-U10`, `-W` or function
context goes), with a marker that prints the hidden context again.
"""

from __future__ import annotations

import re

from tokenomy.compressors.tool_outputs.plan import Plan

CONTEXT = 2

_HUNK = re.compile(r"^@@+ .* @@+")
_FILE_HEADER = re.compile(r"^(diff --git |diff -|index [0-9a-f]|--- |\+\+\+ |new file mode|"
                          r"deleted file mode|similarity index|rename (from|to) |old mode|new mode|"
                          r"Binary files )")


def looks_like_diff(lines: list[str]) -> bool:
    hunks = sum(1 for line in lines[:2000] if _HUNK.match(line))
    headers = sum(1 for line in lines[:2000] if line.startswith(("+++ ", "--- ", "diff --git ")))
    return hunks >= 1 and headers >= 1


def plan_diff(lines: list[str]) -> Plan:
    plan = Plan(lines)
    n = len(lines)
    in_hunk = False
    context: list[int] = []  # indices of unchanged lines inside hunks
    changed: list[bool] = [False] * n
    for i, line in enumerate(lines):
        if _HUNK.match(line):
            in_hunk = True
            continue
        if line.startswith("diff ") or (line.startswith("--- ") and i + 1 < n
                                        and lines[i + 1].startswith("+++ ")):
            in_hunk = False
            continue
        if not in_hunk:
            continue
        if line.startswith(("+", "-")):
            changed[i] = True
        elif line.startswith(" ") or line == "":
            context.append(i)
        else:
            in_hunk = line.startswith("\\")  # "\ No newline at end of file"
    near = [False] * n
    for i in range(n):
        if changed[i]:
            for k in range(max(0, i - CONTEXT), min(n, i + CONTEXT + 1)):
                near[k] = True
    for i in context:
        if not near[i]:
            plan.drop(i, "unchanged context lines")
    return plan

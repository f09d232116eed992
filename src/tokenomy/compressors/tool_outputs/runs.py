"""Command and test runs: scripts, pytest, installers, builds.

Errors, tracebacks (every frame's file and line, and the final exception), failures,
warnings that name a file and the last lines always stay. What goes: Python 3.11's
caret lines under traceback code (`^^^^^`, they only underline the line above),
pytest's progress percentages, installer chatter (pip's Collecting/Downloading,
apt's Get/Unpacking: the result line `Successfully installed ...` says it all),
repeated lines, progress bars, and the middle of very long outputs.
"""

from __future__ import annotations

import re

from tokenomy.compressors.tool_outputs import fold
from tokenomy.compressors.tool_outputs.plan import Plan
from tokenomy.compressors.tool_outputs.query import QueryItems

_CARETS = re.compile(r"^\s*[\^~]+[\s\^~]*$")
_FRAME = re.compile(r'^(\s*)File "([^"]+)", line \d+')
# Frames in installed packages, the standard library or frozen modules: the code line
# under them is library internals (the frame's file:line stays).
_LIBRARY = re.compile(r"site-packages|dist-packages|^<frozen |/lib/python\d[\d.]*/(?!site-)|"
                      r"^<string>$|/node_modules/")
_PYTEST_PERCENT = re.compile(r"\[\s*\d{1,3}%\]")
_PYTEST_HEADER = re.compile(r"^(?:platform \w+ -- Python |cachedir: |rootdir: |configfile: |"
                            r"plugins: |collecting \.\.\. |cov: |hypothesis profile |"
                            r"Using --randomly-seed)")
# `tests/test_x.py::test_a PASSED`: the node id up to its first `::`, then a status. In
# two steps: as one pattern (`^\S+::\S.*\bPASSED`) a line of `::::` backtracks in
# quadratic time.
_PYTEST_NODE = re.compile(r"\S+?::\S")
_PYTEST_STATUS = re.compile(r"\b(?:PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
_INSTALLER = re.compile(
    r"^\s*(?:Collecting|Downloading|Using cached|Obtaining|Requirement already satisfied|"
    r"Preparing metadata|Getting requirements|Building wheels? for|Created wheel for|"
    r"Stored in directory|Installing build dependencies|Checking if build backend|"
    r"Building editable for|Installing backend dependencies|Attempting uninstall|"
    r"Found existing installation|Uninstalling|Successfully uninstalled|Running setup\.py|"
    r"Installing collected packages|Looking in indexes|Looking in links|Processing |"
    r"Requirement already up-to-date|Resolved \d+ packages|Prepared \d+ packages|"
    r"Audited \d+ packages|Get:\d+|Hit:\d+|Ign:\d+|Fetched |Reading package lists|"
    r"Building dependency tree|Reading state information|Selecting previously unselected|"
    r"Preparing to unpack|Unpacking |Setting up |Processing triggers|"
    r"\(Reading database)"
)

# pip's advice that says nothing about this install.
_PIP_ADVICE = re.compile(r"^(?:WARNING: Running pip as the 'root' user|\[notice\] )")
_ADVICE_LINES = "pip advice lines"  # the reason both plans drop it under
_INSTALLED = re.compile(r"^\s*Successfully installed \S")


def plan_advice(lines: list[str]) -> Plan | None:
    """Only pip's advice goes (the root-user warning, `[notice]` of a newer pip): it says
    nothing about the command and costs about 45 tokens wherever pip runs in a container,
    so it goes from outputs of any size. None when there is none."""
    found = [i for i, line in enumerate(lines) if _PIP_ADVICE.match(line)]
    if not found:
        return None
    plan = Plan(lines)
    for i in found:
        plan.drop(i, _ADVICE_LINES, silent=True)
    return plan


def plan_run(lines: list[str], query: QueryItems) -> Plan:
    plan = Plan(lines)
    fold.protect(plan, query)
    # Once pip says what it installed, its progress lines naming the same packages
    # (protected because the command names them) say nothing more.
    installed = any(_INSTALLED.match(line) for line in lines)
    for i, line in enumerate(lines):
        if _CARETS.match(line) and i > 0 and line.strip():
            plan.drop(i, "^^^ caret lines", silent=True)
        elif _PIP_ADVICE.match(line):
            plan.protected[i] = False
            plan.drop(i, _ADVICE_LINES, silent=True)
        elif _INSTALLER.match(line) and (installed or not plan.protected[i]):
            plan.protected[i] = False
            plan.drop(i, "installer progress lines", silent=True)
        elif _PYTEST_HEADER.match(line) and not plan.protected[i]:
            plan.drop(i, "pytest header lines", silent=True)
        elif _pytest_test(line) or line.rstrip().endswith("%]"):
            plan.show(i, _without_percentage(line), "progress percentages ([ 42%])")
    library_frame_code(plan)
    library_frame_runs(plan, query)
    fold.repeated_within(plan)
    long_error_lines(plan, query)
    fold.standard(plan)
    return plan


def _pytest_test(line: str) -> bool:
    node = _PYTEST_NODE.match(line)
    return node is not None and _PYTEST_STATUS.search(line, node.end()) is not None


def _without_percentage(line: str) -> str:
    """`test_x.py::t PASSED   [ 42%]` without its percentage. By hand, not `\\s+\\[...\\]$`:
    on a long run of spaces that pattern backtracks in quadratic time."""
    stripped = line.rstrip()
    start = stripped.rfind("[")
    head = stripped[:start] if start > 0 else ""
    if not head or head == head.rstrip() or not _PYTEST_PERCENT.fullmatch(stripped[start:]):
        return line
    return head.rstrip()


def library_frame_runs(plan: Plan, query: QueryItems) -> None:
    """In a chain of three or more library frames (a test runner's or framework's
    internals between the caller and the raise), the first and last frames stay and
    the ones between go: where it entered the library and where it raised."""
    lines = plan.lines
    frames: list[tuple[int, int, bool]] = []  # (frame line, end of its lines, library?)
    for i, line in enumerate(lines):
        m = _FRAME.match(line)
        if not m:
            continue
        indent = len(m.group(1))
        j = i + 1
        while j < len(lines) and lines[j].strip() and not _FRAME.match(lines[j]) and (
                len(lines[j]) - len(lines[j].lstrip()) > indent):
            j += 1
        frames.append((i, j, _LIBRARY.search(m.group(2)) is not None))
    run: list[tuple[int, int, bool]] = []
    for frame in [*frames, (len(lines), len(lines), False)]:
        adjacent = bool(run) and run[-1][1] == frame[0]
        if frame[2] and (adjacent or not run):
            run.append(frame)
            continue
        if len(run) >= 3:
            for start, end, _ in run[1:-1]:
                for k in range(start, end):
                    if query.hit(lines[k]):
                        continue
                    plan.protected[k] = False
                    plan.silent.discard(k)
                    plan.drop(k, "lines of library traceback frames")
        run = [frame] if frame[2] else []


# An error line longer than this is mostly data (an assertion's dump of two arrays):
# its head says what failed, its tail how it ended.
LONG_ERROR = 800


def long_error_lines(plan: Plan, query: QueryItems) -> None:
    for i, line in enumerate(plan.lines):
        if len(line) > LONG_ERROR and plan.protected[i] and i not in plan.cuts:
            head, tail = LONG_ERROR // 2, LONG_ERROR // 4
            if not query.hit(line[head : len(line) - tail]):
                plan.cuts[i] = (head, tail)


def library_frame_code(plan: Plan) -> None:
    """Under a library frame of a Python traceback, the echoed source line goes."""
    lines = plan.lines
    for i, line in enumerate(lines):
        m = _FRAME.match(line)
        if not m or not _LIBRARY.search(m.group(2)):
            continue
        indent = len(m.group(1))
        j = i + 1
        while j < len(lines) and lines[j].strip() and not _FRAME.match(lines[j]) and (
                len(lines[j]) - len(lines[j].lstrip()) > indent):
            plan.drop(j, "code lines of library frames",
                      silent=True)
            j += 1

"""A line plan: which lines of an output body stay, which go, and how the gaps are marked.

Every kind decides line by line (keep, drop with a reason, or show a shorter form);
`render` turns the plan into text. Protected lines (query items, errors) can never be
dropped, and a run of dropped lines that costs less than its marker (with a margin)
is put back: an elision must pay for itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tokenomy.compressors.tool_outputs.marker import Locator, brief, counted, marker
from tokenomy.compressors.tool_outputs.query import QueryItems
from tokenomy.compressors.tool_outputs.result import Elision

# Dropped lines must have this many times the characters of their marker to go (the
# lines may tokenize more densely than the marker's words).
MARKER_MARGIN = 1.5
# Lines the prompt still holds elsewhere (in an earlier message, earlier in the output):
# their markers need not say how to print them again, not even as a short `sed -n` range
# (about 10 tokens on a marker read again at every later call).
SHOWN_BEFORE = "lines shown before"
REPEATED = "lines repeated from earlier in this output"
RESTATED = frozenset({SHOWN_BEFORE, REPEATED})
_INDENT = re.compile(r"^[ \t]*")


@dataclass
class Plan:
    lines: list[str]
    numbers: list[int | None] = field(default_factory=list)  # file line numbers, when known
    paths: list[str | None] = field(default_factory=list)  # the file a line comes from
    keep: list[bool] = field(default_factory=list)
    protected: list[bool] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)  # what a kept line is printed as
    why: list[str] = field(default_factory=list)  # reason of a dropped line
    silent: set[int] = field(default_factory=set)  # dropped without a marker of their own
    soft: set[int] = field(default_factory=set)  # protected unless already shown (warnings)
    # Why a line is shown shorter; one note per reason at the end says what went.
    shortened: dict[int, str] = field(default_factory=dict)
    # line i keeps only (head, tail) characters
    cuts: dict[int, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.lines)
        self.numbers = self.numbers or [None] * n
        self.paths = self.paths or [None] * n
        self.keep = [True] * n
        self.protected = [False] * n
        self.shown = list(self.lines)
        self.why = [""] * n

    def __len__(self) -> int:
        return len(self.lines)

    def protect(self, i: int, *, soft: bool = False) -> None:
        if soft and not self.protected[i]:
            self.soft.add(i)
        elif not soft:
            self.soft.discard(i)
        self.protected[i] = True
        self.keep[i] = True

    def drop(self, i: int, why: str = "lines", *, silent: bool = False) -> None:
        """Drop line i; `silent` lines (pure decoration, such as the carets under a
        traceback line) get one summary note at the end instead of a marker each."""
        if not self.protected[i]:
            self.keep[i] = False
            self.why[i] = why
            if silent:
                self.silent.add(i)

    def drop_range(self, start: int, end: int, why: str = "lines") -> None:
        for i in range(start, end):
            self.drop(i, why)

    def show(self, i: int, text: str, why: str | None = None) -> None:
        """Print line i in another form: the same facts regrouped (`why` None), or a
        shorter one without something (`why` says what, e.g. ls -l's columns)."""
        self.shown[i] = text
        if why:
            self.shortened[i] = why

    def changed(self) -> bool:
        return not all(self.keep) or self.shown != self.lines or bool(self.cuts)

    def settle(self, query: QueryItems) -> None:
        """A shorter form of a protected line must still hold all its query items.

        A line's path counts as held: grouping prints it once above the file's lines.
        """
        for i in range(len(self.lines)):
            if not (self.protected[i] and self.shown[i] != self.lines[i]):
                continue
            held = self.shown[i] + "\n" + (self.paths[i] or "")
            if not set(query.hits(self.lines[i])) <= set(query.hits(held)):
                self.shown[i] = self.lines[i]


def render(plan: Plan, locator: Locator, *, offset: int = 0) -> tuple[str, list[Elision]]:
    """The plan as text plus its elisions (line numbers 1-based, shifted by `offset`)."""
    n = len(plan)
    keep = list(plan.keep)
    # Put back runs the marker would not pay for.
    i = 0
    while i < n:
        if keep[i] or i in plan.silent:
            i += 1
            continue
        j = _run_end(plan, keep, i)
        chars = sum(len(plan.shown[k]) + 1 for k in range(i, j) if k not in plan.silent)
        if chars < MARKER_MARGIN * len(_marker(plan, locator, i, j)[0]):
            for k in range(i, j):
                keep[k] = k not in plan.silent
        i = j
    out: list[str] = []
    elisions: list[Elision] = []
    named: str | None = None  # the file the last full `sed -n` marker named
    absorbed: set[int] = set()  # silent lines a marker's range covers: counted there
    i = 0
    while i < n:
        if i in plan.silent and not keep[i]:
            i += 1
            continue
        if keep[i]:
            out.append(_cut(plan, i, locator, elisions, offset) if i in plan.cuts
                       else plan.shown[i])
            i += 1
            continue
        j = _run_end(plan, keep, i)
        text, recover = _marker(plan, locator, i, j, named)
        out.append(text)
        if recover and recover.startswith("sed -n ") and text.endswith(f"{recover}]"):
            named = recover.split(" ", 3)[3]
        elisions.append(Elision(first_line=offset + i + 1, last_line=offset + j,
                                lines=j - i, what=plan.why[i], recover=recover))
        absorbed.update(range(i, j))
        i = j
    how = "re-run to see them" if locator.shell.text else "not recoverable"
    reasons: dict[str, int] = {}
    for i, why in plan.shortened.items():
        if keep[i] and plan.shown[i] != plan.lines[i]:
            reasons[why] = reasons.get(why, 0) + 1
    for why, count in sorted(reasons.items()):
        out.append(f"[{why} omitted from {count} lines; {how}]")
        elisions.append(Elision(first_line=offset + 1, last_line=offset + n, lines=0,
                                what=f"{why} ({count} lines)",
                                recover=locator.shell.text.strip() or None))
    silent = sorted(i for i in plan.silent if not keep[i] and i not in absorbed)
    for why in sorted({plan.why[i] for i in silent}):
        group = [i for i in silent if plan.why[i] == why]
        out.append(f"[{counted(len(group), why)} omitted; {how}]")
        elisions.append(Elision(first_line=offset + group[0] + 1,
                                last_line=offset + group[-1] + 1, lines=len(group), what=why,
                                recover=locator.shell.text.strip() or None))
    return "\n".join(out), elisions


def _run_end(plan: Plan, keep: list[bool], i: int) -> int:
    """The end of the run of lines dropped for line i's reason that starts at i.

    Silent lines inside it (a traceback's carets between two frames shown before) do not
    split it into one marker each: the marker's range covers them.
    """
    n, j, end = len(plan), i, i + 1
    while j < n and not keep[j] and (j in plan.silent or plan.why[j] == plan.why[i]):
        j += 1
        if j - 1 not in plan.silent:
            end = j
    return end


def _marker(plan: Plan, locator: Locator, first: int, end: int,
            named: str | None = None) -> tuple[str, str | None]:
    """The marker for dropped lines first..end-1, and the command that prints them again
    (`named`: the file an earlier marker of this output named, see `brief`)."""
    last = end - 1
    path = plan.paths[first] if plan.paths[first] == plan.paths[last] else None
    recover = locator.recover(first, last, (plan.numbers[first], plan.numbers[last]), path)
    # The marker sits at the indentation of the first non-blank line it replaces.
    model = next((plan.lines[k] for k in range(first, end) if plan.lines[k].strip()),
                 plan.lines[first])
    indent = _INDENT.match(model).group(0)  # type: ignore[union-attr]
    why = plan.why[first]
    count = end - first
    if why in RESTATED:
        # The lines are in the prompt already: the marker need not say how to print them
        # (its count keeps the lines after it countable; the elision keeps the command).
        return f"{indent}[... {counted(count, why)} omitted]", recover
    return marker(count, why, brief(recover, locator, named), first, last,
                  indent), recover


def _cut(plan: Plan, i: int, locator: Locator, elisions: list[Elision], offset: int) -> str:
    text = plan.shown[i]
    head, tail = plan.cuts[i]
    start, end = head + 1, len(text) - tail  # 1-based character columns removed
    line = locator.recover(i, i, (plan.numbers[i], plan.numbers[i]), plan.paths[i])
    recover = f"{line} | cut -c {start}-{end}" if line else None
    how = f": {recover}" if recover else f" (output line {i + 1}, columns {start}-{end})"
    elisions.append(Elision(first_line=offset + i + 1, last_line=offset + i + 1, lines=0,
                            what=f"{end - start + 1} characters of a long line", recover=recover))
    return f"{text[:head]}[... {end - start + 1} characters omitted{how}]{text[len(text) - tail:]}"

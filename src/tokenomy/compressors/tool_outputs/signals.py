"""Lines that report failure, in the forms common tools print them; no rule drops these.

Python tracebacks and exceptions, pytest's `E ` / `>` / FAILED lines, compiler
diagnostics (`x.c:3:5: error:`), JavaScript and Java stack frames, `fatal:` (git),
`npm ERR!`, and warnings that name a file. Applied to what commands print; source
code read from a file is content, not a report, so file reads use query items only.
Warnings are kept too, except a warning the conversation already shows verbatim
(test runs repeat the same deprecation warnings every time).
"""

from __future__ import annotations

import re

ERROR = re.compile(
    r"Traceback \(most recent call last\)"
    r"|^\s*File \"[^\"]+\", line \d+"
    r"|^\s*(?:[\w.]+\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure)\b(?::|$)"
    r"|^E\s"
    r"|^>\s"
    r"|\b(?:FAILED|FAILURES|FAIL|ERROR|ERRORS|PANIC|FATAL)\b"
    r"|\b(?:error|fatal|panic)(?:\[\w+\])?:"
    r"|\bnpm ERR!"
    r"|Segmentation fault|core dumped|Aborted"
    r"|^\s+at \S.*[:(]\d+(?::\d+)?\)?\s*$"
    r"|(?<!\S)\S+?\.\w+:\d+(?::\d+)?:\s*error\b"
    r"|\bAssertionError\b",
)
# Warnings that name a file (`x.py:3: DeprecationWarning: ...`, `x.c:3:5: warning:`).
# A file name is tried from the start of its word only (`(?<!\S)`): tried from every
# position of a long unbroken word, `\S+\.` backtracks in quadratic time.
WARNING = re.compile(
    r"(?<!\S)\S+?\.\w+:\d+(?::\d+)?:\s*(?:warning|\w*Warning)\b|^\s*\w*Warning:")
_ASSERT = re.compile(r"\bassert\b")


# Every ERROR alternative contains one of these (lower-cased); checking them first
# skips the regex for the ordinary lines that make up most of any output.
_ERROR_HINTS = ("error", "exception", "traceback", "fail", "file \"", "fatal", "panic", "err!",
                "segmentation", "core dumped", "aborted", "assert", " at ", "exit", "interrupt")


def is_error(line: str) -> bool:
    if line.startswith(("E ", "E\t", "> ", ">\t")):
        return True
    low = line.lower()
    if not any(hint in low for hint in _ERROR_HINTS):
        return False
    if ERROR.search(line) is not None:
        return True
    # `assert x == y` echoed by a test runner; by hand, since `assert.*==` rescans the
    # rest of the line from every `assert` in it.
    found = _ASSERT.search(line) if "assert" in line else None
    return found is not None and "==" in line[found.end():]


def is_warning(line: str) -> bool:
    return "arning" in line and WARNING.search(line) is not None


_FRAME = re.compile(r'^\s*File "[^"]+", line \d+|^Traceback \(most recent call last\):$')


def is_frame(line: str) -> bool:
    """A Python traceback's header or frame line: where, not what went wrong."""
    return _FRAME.match(line) is not None

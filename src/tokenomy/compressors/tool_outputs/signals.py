"""Lines that report failure, in the forms common tools print them; no rule drops these.

Python tracebacks and exceptions, pytest's `E ` / `>` / FAILED lines, compiler
diagnostics (`x.c:3:5: error:`), JavaScript and Java stack frames, `fatal:` (git),
`npm ERR!`, and warnings that name a file. Applied to what commands print; source
code read from a file is content, not a report, so file reads use query items only.
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
    r"|\S+\.\w+:\d+(?::\d+)?:\s*(?:error|warning|\w*Warning)\b"
    r"|^\s*\w*Warning:"
    r"|\bAssertionError\b|\bassert\b.*==",
)


def is_error(line: str) -> bool:
    return ERROR.search(line) is not None

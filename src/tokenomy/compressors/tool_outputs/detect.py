"""Which kind of output this is, from the tool call and the output itself.

The output decides first where it is unambiguous (valid JSON, a unified diff: a
`cat fix.patch` is a diff), then the tool (Claude Code's `Read`/`Grep`/`Glob`),
then the program the shell command ran (after `cd x &&`, through pipes and
`python -m`), then the output's shape; anything unrecognised is `generic`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from tokenomy.compressors.tool_outputs.command import ReadSource, Shell, read_source
from tokenomy.compressors.tool_outputs.diff import looks_like_diff

Kind = Literal["read", "search", "run", "diff", "json", "generic"]

_READ_TOOLS = {"read", "read_file", "view", "view_file", "open", "open_file", "cat"}
_SEARCH_TOOLS = {"grep", "glob", "ls", "list_dir", "list_files", "find", "find_files",
                 "search", "search_files", "search_dir", "file_search", "codebase_search"}
_GREPS = {"grep", "egrep", "fgrep", "rg", "ag", "ack", "git-grep"}
_LISTS = {"find", "fd", "fdfind", "ls", "tree", "locate", "du"}
_RUNNERS = {"python", "python3", "pytest", "py.test", "tox", "nox", "pip", "pip3", "uv",
            "poetry", "conda", "mamba", "npm", "yarn", "pnpm", "node", "deno", "bun", "make",
            "cmake", "ninja", "cargo", "go", "mvn", "gradle", "gradlew", "javac", "java", "gcc",
            "g++", "clang", "rustc", "tsc", "jest", "mocha", "vitest", "ruby", "rake", "bundle",
            "php", "composer", "dotnet", "swift", "apt", "apt-get", "brew", "bash", "sh", "zsh",
            "unittest", "coverage", "mypy", "ruff", "flake8", "pylint", "eslint", "black"}
# A file tool's call rendered with the arguments that size it (`Read x.py offset=100
# limit=50`, the editor's `view x.py view_range=[10,60]`; see agent.zone.command_of).
_SIZED = re.compile(r"\s(?:offset|limit|view_range|start_line|end_line|line_range)=")
_PYTEST_HEADER = re.compile(r"^=+ test session starts =+$", re.MULTILINE)
_CONTEXT_FLAG = re.compile(r"^-(?:[ABC]\d*|\w*[ABC]\d*)$|^--(?:after|before)?-?context")


@dataclass
class Detected:
    kind: Kind
    source: ReadSource | None = None  # file reads
    search: str = ""  # "grep" | "list" | "ls" | "git-status" for search outputs
    single_path: str | None = None  # the one file a grep searched
    context: bool = False  # grep printed context lines (-A/-B/-C)


def detect(body: str, lines: list[str], shell: Shell, tool_name: str | None,
           is_json: bool) -> Detected:
    if is_json:
        return Detected("json")
    if looks_like_diff(lines):
        return Detected("diff")
    tool = (tool_name or "").lower()
    if tool in _READ_TOOLS or shell.program == "view":  # the text editor tool's `view`
        return Detected("read", read_source(shell))
    programs = shell.programs
    program = shell.program
    if program == "git" and shell.main:
        sub = next((a for a in shell.main[0].args if not a.startswith("-")), "")
        if sub == "status":
            return Detected("search", search="git-status")
        if sub in ("grep",):
            program, programs = "git-grep", ["git-grep", *programs[1:]]
        elif sub in ("log", "ls-files", "branch", "tag", "reflog"):
            return Detected("search", search="list")
    # A grep searches when it reads files (first stage, or after `cat file`); after a
    # script it only filters that script's output.
    grep_at = next((i for i, p in enumerate(programs) if p in _GREPS
                    and all(q in ("cat", "find", "xargs", "git") for q in programs[:i])), None)
    if grep_at is not None or tool in ("grep", "search", "search_files", "search_dir"):
        single, context = _grep_shape(shell, grep_at, lines)
        return Detected("search", search="grep", single_path=single, context=context)
    source = read_source(shell)
    if source is not None:
        return Detected("read", source)
    if program in _LISTS or tool in _SEARCH_TOOLS:
        return Detected("search", search="ls" if program == "ls" or tool == "ls" else "list")
    if program in _RUNNERS or _PYTEST_HEADER.search(body) or "Traceback (most recent call" in body:
        return Detected("run")
    return Detected("generic")


def _grep_shape(shell: Shell, grep_at: int | None, lines: list[str]) -> tuple[str | None, bool]:
    """The single file a grep searched (its lines carry no path), and whether it has context."""
    context = any(line == "--" for line in lines[:5000])
    if grep_at is None:
        return None, context
    pipeline = shell.main
    grep = pipeline[grep_at]
    args = grep.args
    context = context or any(_CONTEXT_FLAG.match(a) for a in args)
    recursive = any(a in ("-r", "-R", "--recursive") or (a.startswith("-") and not
                    a.startswith("--") and ("r" in a or "R" in a)) for a in args)
    if grep_at > 0:
        first = read_source(Shell(shell.text, [pipeline[:1]]))
        return (first.path if first else None), context
    positional: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-A", "-B", "-C", "-m", "-e", "-f", "--include", "--exclude", "-g", "-t",
                 "--type", "--glob", "--max-count", "--context"):
            skip = True
            if a in ("-e", "-f"):
                positional.append("<pattern>")
            continue
        if a.startswith("-"):
            continue
        positional.append(a)
    files = positional[1:]
    if grep.program == "rg" and not files:
        return None, context
    if len(files) == 1 and not recursive and "*" not in files[0]:
        return files[0], context
    return None, context


def sized_by_tool(tool_name: str | None, command: str | None) -> bool:
    """A file tool's read the agent sized itself (an offset, a limit, a line range)."""
    return bool(tool_name and command and (tool_name.lower() in _READ_TOOLS
                                           or command.startswith("view "))
                and _SIZED.search(command))

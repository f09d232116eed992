"""Reading the tool call: which program made the output, and which file lines it printed.

Agents wrap commands (`cd /x && ...`), pipe them (`cat f | sed -n 5,9p`), redirect
(`2>&1`) and feed scripts through heredocs; this parses just enough shell to find
the program that printed the output and, for file reads, the real line number of
the first printed line (only when the command makes it certain).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1[^\n]*\n.*?\n[ \t]*\2[ \t]*$",
                      re.DOTALL | re.MULTILINE)
_FD_DUP = re.compile(r"(?<![\w/])\d*>&\d+")
_FD_REDIRECT = re.compile(r"(?<![\w/])\d+(>>?)")
_SEPARATORS = {"&&", "||", ";", "&", "\n", ";;"}
_PUNCTUATION = frozenset(";&|()<>\n")
_WRAPPERS = {"sudo", "env", "time", "nice", "nohup", "exec", "command", "builtin"}
_RUNNERS = {("uv", "run"), ("poetry", "run"), ("pipenv", "run"), ("pdm", "run"),
            ("hatch", "run"), ("conda", "run")}
_PREAMBLE = {"cd", "pushd", "popd", "export", "set", "source", ".", "true", ":", "unset",
             "alias", "ulimit"}
# Pipeline stages that only select or reshape what an earlier stage printed.
FILTERS = frozenset({"head", "tail", "grep", "egrep", "fgrep", "sort", "uniq", "wc", "cut",
                     "tee", "less", "more", "cat", "tr", "column", "nl", "sed", "awk", "xargs",
                     "rg", "fold", "fmt"})
# Line numbers and counts: at most 9 digits, so `int()` of a hostile one stays cheap and
# never raises (Python refuses to convert more than 4,300 digits).
_SED_RANGE = re.compile(r"^(\d{1,9})(?:,(\d{1,9}|\$))?p$")
_AWK_RANGE = re.compile(
    r"NR\s*>=?\s*(\d{1,9})(?!\d)\s*&&\s*NR\s*<=?\s*\d+|NR\s*==\s*(\d{1,9})(?!\d)\s*,")
_COUNT_OPT = re.compile(r"^-(\d{1,9})$")


@dataclass
class Simple:
    """One simple command: its words, with redirections removed."""

    argv: list[str]

    @property
    def program(self) -> str:
        """The program that runs (`python -m pytest` -> pytest, `sudo make` -> make)."""
        words = _strip_wrappers(self.argv)
        if not words:
            return ""
        name = words[0].rsplit("/", 1)[-1]
        if re.fullmatch(r"python[\d.]*", name) and len(words) > 2 and words[1] == "-m":
            return words[2]
        return name

    @property
    def args(self) -> list[str]:
        words = _strip_wrappers(self.argv)
        if len(words) > 2 and words[1] == "-m":
            return words[3:]
        return words[1:]


@dataclass
class Shell:
    """A command line as a sequence of pipelines."""

    text: str
    pipelines: list[list[Simple]] = field(default_factory=list)

    @property
    def main(self) -> list[Simple]:
        """The last pipeline that prints something (skips `cd x &&` and the like)."""
        for pipeline in reversed(self.pipelines):
            if pipeline and pipeline[0].program not in _PREAMBLE:
                return pipeline
        return []

    @property
    def program(self) -> str:
        """The program whose output this is: the last pipeline stage that is not a filter
        (`echo x | sqlfluff lint -` is sqlfluff's, `pytest ... | tail -50` is pytest's)."""
        main = self.main
        for cmd in reversed(main):
            if cmd.program not in FILTERS:
                return cmd.program
        return main[0].program if main else ""

    @property
    def programs(self) -> list[str]:
        return [c.program for c in self.main]

    @property
    def incidental(self) -> list[str]:
        """Words of the command that say how and where it ran, not what it is after:
        program names, `cd` targets, and the paths a search or listing (grep, rg,
        find, ls) was pointed at (whole and split into their components)."""
        found: list[str] = []
        words: list[str] = []
        for pipeline in self.pipelines:
            for cmd in pipeline:
                words.append(cmd.program)
                program, args = cmd.program, [a for a in cmd.args if not a.startswith("-")]
                if program in ("cd", "pushd"):
                    found += args
                elif program in ("grep", "egrep", "fgrep", "rg", "ag", "ack"):
                    found += args[1:]
                elif program in ("find", "ls", "tree", "fd"):
                    found += args
        for arg in found:
            words.append(arg.strip("./"))
            words += [w for w in re.split(r"[/\s]+", arg) if w and not w.startswith("*")]
        return words

    @property
    def windowed(self) -> bool:
        """The agent chose exactly which lines to see: a `sed -n A,Bp` range, `head`/`tail`
        with a count, `grep` with context lines (-A/-B/-C), an `awk` NR range."""
        for cmd in self.main:
            program, args = cmd.program, cmd.args
            if program in ("head", "tail") and any(
                    re.fullmatch(r"-n?\d+|-n|--lines(=\d+)?|\d+", a) for a in args):
                return True
            if program == "sed" and "-n" in args and any(re.search(r"\d+\s*,\s*\$?\d*\s*p", a)
                                                          for a in args):
                return True
            if program in ("grep", "egrep", "rg") and any(
                    re.fullmatch(r"-[ABC]\d*|--(after|before)?-?context(=\d+)?", a)
                    or re.fullmatch(r"-\w*[ABC]\d+", a) for a in args):
                return True
            if program == "awk" and any("NR" in a for a in args):
                return True
        return False

    @property
    def simple(self) -> bool:
        """One pipeline, one line: safe to append `| sed -n a,bp` to."""
        return len([p for p in self.pipelines if p]) <= 1 and "\n" not in self.text.strip()


def _strip_wrappers(argv: list[str]) -> list[str]:
    words = list(argv)
    while words:
        head = words[0].rsplit("/", 1)[-1]
        if re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]) or head in _WRAPPERS:
            words = words[1:]
        elif len(words) > 1 and (head == "timeout" or (head, words[1]) in _RUNNERS):
            words = words[2:]
        elif head in ("npx", "xargs"):  # their own options, then the command they run
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[1:]
        else:
            break
    return words


def parse(command: str | None) -> Shell:
    """Pipelines of `command`; an empty Shell when it cannot be parsed."""
    if not command:
        return Shell("")
    text = _HEREDOC.sub("", command)
    text = _FD_REDIRECT.sub(r"\1", _FD_DUP.sub("", text))
    tokens = _tokens(text)
    if tokens is None:
        first = text.strip().split("\n", 1)[0]
        tokens = _tokens(first) or []
    pipelines: list[list[Simple]] = []
    pipeline: list[Simple] = []
    words: list[str] = []
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
            continue
        if token and set(token) <= _PUNCTUATION and ("\n" in token or ";" in token):
            token = "\n"  # "\n\n", ";\n", "&&\n": the line ends a pipeline
        if token in _SEPARATORS or token == "|" or token == "|&":
            if words:
                pipeline.append(Simple(words))
            words = []
            if token not in ("|", "|&"):
                if pipeline:
                    pipelines.append(pipeline)
                pipeline = []
            continue
        if token and set(token) <= set("<>&") and token not in ("&",):
            skip_next = True  # the redirection's target
            continue
        if token in ("(", ")", "{", "}"):
            continue
        words.append(token)
    if words:
        pipeline.append(Simple(words))
    if pipeline:
        pipelines.append(pipeline)
    return Shell(command, pipelines)


def _tokens(text: str) -> list[str] | None:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return [t for t in lexer if not t.startswith("#")]
    except ValueError:  # an unclosed quote
        return None


@dataclass
class ReadSource:
    """Where a file read's lines come from."""

    path: str | None
    first_line: int | None  # the file line number of the first printed line, when certain
    numbered: bool = False  # each line carries its file line number (cat -n, nl)


_READERS = {"cat", "head", "tail", "sed", "nl", "awk", "less", "more", "bat", "batcat"}


def read_source(shell: Shell) -> ReadSource | None:
    """For a file read (`cat`, `sed -n A,Bp`, `head`, `nl`, ...): its file and first line."""
    pipeline = shell.main
    if not pipeline or pipeline[0].program not in _READERS:
        return None
    source = pipeline[0]
    files = _file_args(source)
    if len(files) != 1:
        return None if not files else ReadSource(None, None)
    path = files[0]
    first: int | None = 1
    numbered = False
    program = source.program
    args = source.args
    if program in ("cat", "bat", "batcat", "less", "more"):
        numbered = "-n" in args
    elif program == "nl":
        numbered = True
    elif program == "head":
        pass
    elif program == "tail":
        first = _tail_start(args)
    elif program == "sed":
        first = _sed_start(args)
        if first is None and not any(a.startswith("-") for a in args):
            return None  # a sed edit, not a print
    elif program == "awk":
        first = _awk_start(args)
    for stage in pipeline[1:]:
        if first is None:
            break
        if stage.program == "head":
            continue
        if stage.program == "sed":
            start = _sed_start(stage.args)
            first = None if start is None or numbered else first + start - 1
        elif stage.program == "tail":
            start = _tail_start(stage.args)
            first = None if start is None or numbered else first + start - 1
        elif stage.program in ("cat",) and not stage.args:
            continue
        else:
            return None  # grep, sort, ...: not a plain read any more
    return ReadSource(path, first, numbered)


def _file_args(cmd: Simple) -> list[str]:
    args = cmd.args
    out: list[str] = []
    skip = False
    script_seen = cmd.program not in ("sed", "awk")
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in ("-n", "-c", "-e", "-f") and cmd.program in ("head", "tail"):
            skip = True
            continue
        if arg == "-e" and cmd.program == "sed":
            skip = True
            script_seen = True
            continue
        if arg.startswith("-") and arg != "-":
            continue
        if not script_seen:
            script_seen = True
            continue
        if i == 0 and cmd.program in ("sed", "awk"):
            continue
        out.append(arg)
    return out


def _count(text: str) -> bool:
    """A number `int()` takes quickly: decimal digits (`isdigit` lets `²` through), 9 at most."""
    return 0 < len(text) <= 9 and text.isdecimal()


def _sed_start(args: list[str]) -> int | None:
    if "-n" not in args and not any(a.startswith("-n") for a in args):
        return None
    scripts = [a for a in args if not a.startswith("-")]
    if not scripts:
        return None
    m = _SED_RANGE.match(scripts[0].strip())
    return int(m.group(1)) if m else None


def _awk_start(args: list[str]) -> int | None:
    scripts = [a for a in args if not a.startswith("-")]
    if not scripts:
        return None
    m = _AWK_RANGE.search(scripts[0])
    if not m:
        return None
    return int(m.group(1) or m.group(2))


def _tail_start(args: list[str]) -> int | None:
    """`tail -n +K` starts at line K; `tail -N` at a line we cannot know."""
    for i, arg in enumerate(args):
        value = args[i + 1] if arg == "-n" and i + 1 < len(args) else (
            arg[2:] if arg.startswith("-n") else None)
        if value is not None and value.startswith("+") and _count(value[1:]):
            return int(value[1:])
    return None


def count_option(cmd: Simple) -> int | None:
    """`head -20`, `head -n 20`, `tail -n 20`: the count."""
    args = cmd.args
    for i, arg in enumerate(args):
        m = _COUNT_OPT.match(arg)
        if m:
            return int(m.group(1))
        if arg == "-n" and i + 1 < len(args) and _count(args[i + 1].lstrip("+")):
            return int(args[i + 1].lstrip("+"))
    return None

"""What the query names: the identifiers, paths, numbers and line references no rule may drop.

The query is the task plus the agent's latest step (its text and its tool call).
Prose counts only code-like names (snake_case, dotted, camelCase, with digits: a
plain word such as "validate" says nothing, and protecting every line containing
it would protect everything; nor does SHOUTING). Code spans (backticks, fences)
add Capitalised names (classes) and the functions of traceback frames; the tool
call counts every name of four or more characters. Keywords never count.
"""

from __future__ import annotations

import keyword
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

_IDENT = re.compile(r"(?<![\w.])[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?!\w)")
_PATH = re.compile(r"(?<![\w./-])(?:[\w.-]+/)+[\w.-]+|(?<![\w./-])[\w-]+\.[A-Za-z]{1,5}(?!\w)")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)*(?!\w)")
_WORD = re.compile(r"\w+")
_CODE_SPAN = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
# `File "x.py", line 12` (Python), `x.py:12` (grep, compilers, pytest), `x.py line 12`.
# A path is tried from the start of its word only: tried from every position of a long
# word, `[\w./-]+\.` backtracks in quadratic time.
_LINE_REF = re.compile(
    r"(?<![\w./-])([\w./-]+\.\w{1,5})\"?(?:, line |:| line )(\d{1,9})(?!\d)"
)

# Words that occur in any code or shell command and so point at nothing.
_COMMON = frozenset(keyword.kwlist) | frozenset([
    "self", "cls", "print", "return", "import", "from", "none", "true", "false", "null", "this",
    "that", "with", "open", "echo", "grep", "head", "tail", "cat", "sed", "awk", "find", "python",
    "python3", "pytest", "bash", "then", "done", "else", "elif", "while", "func", "function",
    "const", "void", "static", "public", "private", "string", "list", "dict", "len", "str", "int",
    "float", "bool", "type", "args", "kwargs", "test", "tests", "main", "file", "files", "line",
    "lines"])


_CODE_LIKE = re.compile(r"[_.\d]|.[A-Z]")
_SHOUTING = re.compile(r"[A-Z]+")
_INITIALS = re.compile(r"\w(?:\.\w)+")  # e.g, i.e
_CAPITALISED = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*")
# A traceback frame names its function: `File "x.py", line 3, in validate`.
_FRAME_FUNCTION = re.compile(r", line \d+, in ([A-Za-z_]\w*)")


def _code_like(name: str) -> bool:
    """A name no prose word looks like: snake_case, dotted, with digits, camelCase."""
    return _SHOUTING.fullmatch(name) is None and _CODE_LIKE.search(name) is not None


@dataclass
class QueryItems:
    """The query's items, indexed by word so a line is checked in time linear in its length."""

    items: frozenset[str]
    line_refs: dict[str, set[int]] = field(default_factory=dict)  # file basename -> line numbers
    # Each item filed under its longest word: a line can hold the item only if it holds
    # that word. `within` narrows the index to the words of one output, so checking a
    # line costs a few substring tests instead of splitting it into words.
    _by_word: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self._by_word:
            self._by_word = _index(self.items)

    def within(self, text: str) -> QueryItems:
        """The same items, indexed only by the words that occur in `text`."""
        present = set(_WORD.findall(text)) & self._by_word.keys()
        narrowed = {word: self._by_word[word] for word in sorted(present)}
        return QueryItems(self.items, self.line_refs, narrowed or {"": ()})

    def hits(self, line: str) -> list[str]:
        """The query items `line` contains as whole tokens."""
        found: list[str] = []
        for word, items in self._by_word.items():
            if word and word in line:
                found += [item for item in items if _contains(line, item)]
        return found

    def names(self, line: str) -> bool:
        """Whether `line` names a query item, also as part of a snake_case name: a
        definition line `class Rule_L031` is named by `L031`, `def test_reindl` by
        `reindl`."""
        for word, items in self._by_word.items():
            if word and word in line and any(_part_pattern(item).search(line)
                                             for item in items):
                return True
        return False

    def hit(self, line: str) -> bool:
        for word, items in self._by_word.items():
            if word and word in line and any(_contains(line, item) for item in items):
                return True
        return False

    def lines_for(self, path: str | None) -> set[int]:
        """Line numbers of `path` that the query points at (a traceback frame, `x.py:12`)."""
        if not path:
            return set()
        return self.line_refs.get(path.rsplit("/", 1)[-1], set())


@lru_cache(maxsize=4096)
def _index(items: frozenset[str]) -> dict[str, tuple[str, ...]]:
    index: dict[str, list[str]] = defaultdict(list)
    for item in sorted(items):
        words = _WORD.findall(item)
        if words:
            index[max(words, key=len)].append(item)
    return {word: tuple(found) for word, found in index.items()}


@lru_cache(maxsize=65536)
def _item_pattern(item: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(item)}(?!\w)")


@lru_cache(maxsize=65536)
def _part_pattern(item: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(item)}(?![A-Za-z0-9])")


def _contains(text: str, item: str) -> bool:
    return _item_pattern(item).search(text) is not None


@lru_cache(maxsize=8192)
def _items(text: str, *, kind: str) -> frozenset[str]:
    """Items of one piece of the query; cached, since the task repeats in every query.

    kind: "prose" (code-like names only), "code" (also Capitalised names such as
    class names, and traceback function names), "command" (every name).
    """
    found: set[str] = set()
    paths = [p.strip(".") for p in _PATH.findall(text)
             if len(p.strip(".")) >= 3 and not _INITIALS.fullmatch(p.strip("."))]
    found.update(paths)
    if kind == "command":
        # A path's directories say where to look, not what to find: keep the whole
        # path and the file name, not each component.
        found.update(p.rsplit("/", 1)[-1] for p in paths if "/" in p)
        text = _PATH.sub(" ", text)
    # One- and two-digit numbers are everywhere (line numbers, counts, dates).
    found.update(n for n in _NUMBER.findall(text) if len(n.replace(".", "")) >= 3)
    for name in _IDENT.findall(text):
        if len(name) < 4 or name.lower() in _COMMON or _INITIALS.fullmatch(name):
            continue
        if (kind == "command" or _code_like(name)
                or (kind == "code" and _CAPITALISED.fullmatch(name))):
            found.add(name)
            # `irradiance.reindl` names `reindl` too: that is how its definition reads.
            last = name.rsplit(".", 1)[-1]
            if last != name and len(last) >= 4 and last.lower() not in _COMMON:
                found.add(last)
    if kind == "code":
        found.update(f for f in _FRAME_FUNCTION.findall(text) if f.lower() not in _COMMON)
    return frozenset(found)


def query_items(query: str, command: str | None = None,
                incidental: Iterable[str] = ()) -> QueryItems:
    """Items of the query (task + latest step) and of the tool call that produced the output.

    `incidental`: the command's words that say how and where it ran (program names,
    `cd` targets, the directories a grep searched); they are not what it is after.
    """
    items: set[str] = set()
    refs: dict[str, set[int]] = defaultdict(set)
    for block in _blocks(query):
        block_items, block_refs = _block(block)
        items |= block_items
        for name, number in block_refs:
            refs[name].add(number)
    if command:
        items |= _items(command, kind="command") - set(incidental)
        for name, number in _refs(command):
            refs[name].add(number)
    return QueryItems(frozenset(items), dict(refs))


def _blocks(query: str) -> list[str]:
    """The query in paragraphs, a fenced code block never split: the task's paragraphs
    repeat in every query, so each one's items are computed once (see `_block`)."""
    blocks: list[str] = []
    current: list[str] = []
    fenced = False
    for paragraph in query.split("\n\n"):
        current.append(paragraph)
        fenced ^= paragraph.count("```") % 2 == 1
        if not fenced:
            blocks.append("\n\n".join(current))
            current = []
    if current:
        blocks.append("\n\n".join(current))
    return blocks


@lru_cache(maxsize=8192)
def _block(block: str) -> tuple[frozenset[str], tuple[tuple[str, int], ...]]:
    items = set(_items(block, kind="prose"))
    for span in _CODE_SPAN.findall(block):
        items |= _items(span, kind="code")
    return frozenset(items), _refs(block)


def _refs(text: str) -> tuple[tuple[str, int], ...]:
    return tuple((path.rsplit("/", 1)[-1], int(number))
                 for path, number in _LINE_REF.findall(text))

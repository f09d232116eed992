"""Code-aware compression (LongCodeZip style): keep the functions the instruction needs.

Python is split with `ast` into functions, methods and classes; other
languages fall back to blocks separated by blank lines at brace depth zero.
Blocks are ranked by relevance to the instruction; the most relevant are kept
whole, the rest shrink to their signature (`...` as the body, so Python still
parses), and the least relevant vanish when even signatures do not fit.
Imports and module constants are kept: other code refers to them.
"""

from __future__ import annotations

import ast
import re
import time
from dataclasses import dataclass

from tokenomy.compressors.base import (
    CompressionResult,
    Span,
    count_or_skip,
    make_result,
    untouched,
)
from tokenomy.compressors.relevance import hybrid_scores
from tokenomy.tokenizers import count_text, get_encoder


@dataclass
class _Block:
    start: int  # line index, inclusive
    end: int  # line index, exclusive
    full: str
    stub: str | None  # the signature form, or None when it has none (always whole or gone)
    required: bool = False  # imports, module docstring, class headers of kept members
    parent: int | None = None  # the class header block a method belongs to
    score: float = 0.0
    full_cost: int = 0
    stub_cost: int = 0


class CodeCompressor:
    name = "code"

    def compress(
        self, text: str, *, query: str | None, target_tokens: int, model: str
    ) -> CompressionResult:
        started = time.perf_counter()
        original_tokens, skipped = count_or_skip(text, model=model, method=self.name,
                                                 started=started, budget=target_tokens)
        if skipped is not None:
            return skipped
        lines = text.splitlines(keepends=True)
        blocks = python_blocks(text, lines)
        language = "python"
        if blocks is None:
            blocks = brace_blocks(lines)
            language = "generic"
        if not blocks:
            return untouched(text, model=model, method=self.name, started=started,
                             reason="no blocks", original_tokens=original_tokens)
        encoder = get_encoder(model)
        for b in blocks:
            b.full_cost = encoder.count(b.full)
            b.stub_cost = encoder.count(b.stub) if b.stub is not None else 0
        self._score(blocks, query or "")
        chosen = _choose(blocks, target_tokens)
        out, spans = _render(blocks, chosen, lines)
        # The joined count can differ a little from the sum: shrink until it fits.
        while count_text(out, model) > target_tokens:
            if not _shrink_one(blocks, chosen):
                break
            out, spans = _render(blocks, chosen, lines)
        return make_result(text, out, model=model, method=self.name, started=started,
                           kept_spans=spans, original_tokens=original_tokens,
                           detail={"language": language})

    @staticmethod
    def _score(blocks: list[_Block], query: str) -> None:
        optional = [b for b in blocks if not b.required]
        if not optional:
            return
        if not query.strip():
            for rank, b in enumerate(optional):
                b.score = 1.0 / (1 + rank)
            return
        # Identifiers are split (snake_case, CamelCase) so BM25 can match words in the query.
        texts = [_words(b.full)[:2000] for b in optional]
        scores, _ = hybrid_scores(texts, query, bm25_weight=0.5)
        names = {w.lower() for w in re.findall(r"[A-Za-z_]\w+", query)}
        for b, s in zip(optional, scores, strict=True):
            head = (b.stub or b.full).split("\n", 1)[0]
            named = any(n in head.lower() for n in names if len(n) > 3)
            b.score = float(s) + (0.5 if named else 0.0)


def _words(code: str) -> str:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", code)
    return spaced.replace("_", " ")


def python_blocks(text: str, lines: list[str]) -> list[_Block] | None:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    blocks: list[_Block] = []
    for node in tree.body:
        _add_node(node, lines, blocks, parent=None)
    return _fill_gaps(blocks, lines)


def _node_start(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno, *(d.lineno for d in decorators)]) - 1


def _add_node(node: ast.stmt, lines: list[str], blocks: list[_Block], parent: int | None) -> None:
    start, end = _node_start(node), node.end_lineno or node.lineno
    full = "".join(lines[start:end])
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        body_line = node.body[0].lineno - 1
        if body_line <= node.lineno - 1:  # one-line def: no smaller form
            blocks.append(_Block(start, end, full, None, parent=parent))
            return
        indent = _indent(lines[body_line])
        stub = "".join(lines[start:body_line]) + f"{indent}...\n"
        blocks.append(_Block(start, end, full, stub, parent=parent))
        return
    if isinstance(node, ast.ClassDef) and parent is None:
        body_line = node.body[0].lineno - 1
        if body_line <= node.lineno - 1:
            blocks.append(_Block(start, end, full, None, parent=parent))
            return
        header = "".join(lines[start:body_line])
        indent = _indent(lines[body_line])
        index = len(blocks)
        # The header's stub adds `...` so a class whose members all vanish still parses.
        blocks.append(_Block(start, body_line, header, header + f"{indent}...\n", parent=None))
        for child in node.body:
            _add_node(child, lines, blocks, parent=index)
        return
    required = isinstance(node, ast.Import | ast.ImportFrom) or (
        isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant)
        and parent is None and not blocks
    )
    blocks.append(_Block(start, end, full, None, required=required or _is_constant(node),
                         parent=parent))


def _is_constant(node: ast.stmt) -> bool:
    """Module-level NAME = ... assignments: cheap, and other code refers to them."""
    return isinstance(node, ast.Assign | ast.AnnAssign) and len(ast.unparse(node)) < 200


def _fill_gaps(blocks: list[_Block], lines: list[str]) -> list[_Block]:
    """Comments and blank lines between nodes travel with the following block's full form."""
    prev_end = 0
    for b in blocks:
        if b.start > prev_end and b.parent is None:
            gap = "".join(lines[prev_end : b.start])
            if gap.strip():
                b.full = gap + b.full
                b.start = prev_end
        prev_end = max(prev_end, b.end)
    return blocks


def brace_blocks(lines: list[str]) -> list[_Block]:
    """Any language: blocks split on blank lines at brace depth zero."""
    blocks: list[_Block] = []
    depth = 0
    start = 0
    for i, line in enumerate(lines):
        depth += line.count("{") - line.count("}")
        last = i == len(lines) - 1
        if (not line.strip() and depth <= 0) or last:
            end = i + 1
            chunk = "".join(lines[start:end])
            if chunk.strip():
                first = chunk.lstrip("\n").split("\n", 1)[0]
                stub = first.rstrip() + (" ... }\n" if "{" in first else " ...\n")
                required = bool(re.match(r"\s*(import|from|#include|using|package|use)\b", chunk))
                blocks.append(_Block(start, end, chunk, stub if "\n" in chunk.strip() else None,
                                     required=required))
            start = end
            depth = max(depth, 0)
    return blocks


# -- selection: "full", "stub" or absent per block --


def _choose(blocks: list[_Block], budget: int) -> dict[int, str]:
    chosen: dict[int, str] = {}
    used = 0
    for i, b in enumerate(blocks):
        if b.required:
            chosen[i] = "full"
            used += b.full_cost
    optional = sorted((i for i, b in enumerate(blocks) if not b.required),
                      key=lambda i: -blocks[i].score)
    # 1. Whole bodies of the most relevant blocks, using most of what is left ...
    share = used + int(0.7 * max(0, budget - used))
    for i in optional:
        if _is_class_header(blocks, i):
            continue
        cost = blocks[i].full_cost + _parent_cost(blocks, chosen, i)
        if used + cost > share:
            break
        used += cost
        _open_parent(blocks, chosen, i)
        chosen[i] = "full"
    # 2. ... then signatures of the rest (the map of the code), best first ...
    for i in optional:
        b = blocks[i]
        if i in chosen or _is_class_header(blocks, i):
            continue
        own = b.stub_cost if b.stub is not None else b.full_cost
        cost = own + _parent_cost(blocks, chosen, i)
        if used + cost <= budget:
            used += cost
            _open_parent(blocks, chosen, i)
            chosen[i] = "stub" if b.stub is not None else "full"
    # 3. ... and bodies again with whatever room is left.
    for i in optional:
        b = blocks[i]
        if chosen.get(i) != "stub":
            continue
        extra = b.full_cost - b.stub_cost
        if used + extra <= budget:
            used += extra
            chosen[i] = "full"
    return chosen


def _is_class_header(blocks: list[_Block], i: int) -> bool:
    return any(b.parent == i for b in blocks)


def _parent_cost(blocks: list[_Block], chosen: dict[int, str], i: int) -> int:
    p = blocks[i].parent
    return 0 if p is None or p in chosen else blocks[p].full_cost


def _open_parent(blocks: list[_Block], chosen: dict[int, str], i: int) -> None:
    p = blocks[i].parent
    if p is not None and p not in chosen:
        chosen[p] = "full"


def _shrink_one(blocks: list[_Block], chosen: dict[int, str]) -> bool:
    """Demote the least relevant full body to a stub, or drop the least relevant stub."""
    fulls = [i for i, m in chosen.items() if m == "full" and blocks[i].stub is not None
             and not blocks[i].required and not _is_class_header(blocks, i)]
    if fulls:
        chosen[min(fulls, key=lambda i: blocks[i].score)] = "stub"
        return True
    rest = [i for i in chosen if not blocks[i].required and not _is_class_header(blocks, i)]
    if rest:
        del chosen[min(rest, key=lambda i: blocks[i].score)]
        return True
    return False


def _render(
    blocks: list[_Block], chosen: dict[int, str], lines: list[str]
) -> tuple[str, list[Span]]:
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    parts: list[str] = []
    spans: list[Span] = []
    # A member kept without its class header would be indented code at top level.
    for j in list(chosen):
        parent = blocks[j].parent
        if parent is not None and parent not in chosen:
            chosen[parent] = "stub"
    for i, b in enumerate(blocks):
        mode = chosen.get(i)
        if mode is None:
            continue
        if _is_class_header(blocks, i):
            # A class with members kept needs only its header; with none, `...` keeps it valid.
            members = any(blocks[j].parent == i for j in chosen)
            parts.append(b.full if members else (b.stub or b.full))
        elif mode == "full" or b.stub is None:
            parts.append(b.full)
            spans.append((offsets[b.start], offsets[b.end]))
        else:
            parts.append(b.stub)
        if parts and not parts[-1].endswith("\n"):
            parts[-1] += "\n"
    return "".join(parts).rstrip("\n") + "\n", spans


def _indent(line: str) -> str:
    """The line's leading whitespace (four spaces when it has none)."""
    return line[: len(line) - len(line.lstrip(" \t"))] or "    "

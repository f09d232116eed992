"""Codified agent plans: CodeAgents-style pseudocode that is parsed, checked and run.

A plan is a small typed subset of Python. Tool results are evidence
variables `#E1`, `#E2`, ... (ReWOO's placeholders), which later lines use:

    cities: list[str] = ["Paris", "Rome"]
    #E1: dict = get_weather(city=cities[0])
    #E2: dict = get_weather(city=cities[1])
    if #E1.temp > #E2.temp:
        warmer: str = cities[0]
    else:
        warmer: str = cities[1]
    for city in cities:
        #E3: str = note(text=f"checked {city}")

Allowed: assignments (optionally annotated), tool calls, `for`, `if/elif/else`,
literals, f-strings, arithmetic, comparisons, `and/or/not`, indexing,
`x.field` (a dict key) and the builtins in `BUILTINS`. Nothing else runs:
the plan is interpreted node by node, never `exec`-ed. The classic ReWOO form
(`Plan: ...` / `#E1 = Tool[input with #E0]`) is accepted too.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BUILTINS: dict[str, Callable[..., Any]] = {
    "len": len, "str": str, "int": int, "float": float, "bool": bool, "min": min, "max": max,
    "sum": sum, "round": round, "sorted": sorted, "abs": abs, "range": range, "list": list,
}
TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str, "int": int, "float": (int, float), "bool": bool, "list": list, "dict": dict,
    "any": object, "Any": object,
}
_ALLOWED = (
    ast.Module, ast.Assign, ast.AnnAssign, ast.Expr, ast.For, ast.If, ast.Pass, ast.Call,
    ast.keyword, ast.Name, ast.Load, ast.Store, ast.Constant, ast.List, ast.Tuple, ast.Dict,
    ast.Attribute, ast.Subscript, ast.Slice, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp,
    ast.JoinedStr, ast.FormattedValue, ast.IfExp,
    ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Add, ast.Sub, ast.Mult, ast.Div,
    ast.FloorDiv, ast.Mod, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In,
    ast.NotIn, ast.Is, ast.IsNot,
)
_EVIDENCE = re.compile(r"#E(\d+)")
_CLASSIC = re.compile(r"^\s*#E(\d+)\s*=\s*([A-Za-z_]\w*)\s*\[(.*)\]\s*$")
_FENCE = re.compile(r"```[a-zA-Z]*\n(.*?)```", re.S)
MAX_STEPS = 500


class PlanError(ValueError):
    """A plan that cannot be parsed or checked; `problems` says why, line by line."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class ToolCall:
    name: str
    args: dict[str, Any]
    result: Any = None
    error: str | None = None
    ms: float = 0.0


@dataclass
class Plan:
    text: str  # the plan as written (normalised to the pseudocode form)
    tree: ast.Module
    tool_calls: list[str]  # tool names in the order they appear
    evidence: list[str]  # E1, E2, ... in the order they are assigned


@dataclass
class PlanRun:
    variables: dict[str, Any] = field(default_factory=dict)
    calls: list[ToolCall] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def evidence(self) -> dict[str, Any]:
        return {f"#{k}": v for k, v in self.variables.items() if re.fullmatch(r"E\d+", k)}


def _from_classic(text: str) -> str | None:
    """`#E1 = Search[weather in #E0]` lines -> pseudocode, or None if not that form."""
    lines = [line for line in text.splitlines() if line.strip()]
    calls = [_CLASSIC.match(line) for line in lines]
    if not any(calls):
        return None
    out = []
    for line, match in zip(lines, calls, strict=True):
        if match:
            arg = _EVIDENCE.sub(r"{E\1}", match.group(3).strip())
            out.append(f"E{match.group(1)} = {match.group(2)}(f{arg!r})")
        else:
            out.append("# " + line.strip())
    return "\n".join(out)


def _clean(text: str) -> str:
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    classic = _from_classic(text)
    if classic is not None:
        return classic
    return _EVIDENCE.sub(r"E\1", text.strip())


def _signature_problem(name: str, fn: Callable[..., Any], node: ast.Call) -> str | None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    args = [None] * len(node.args)
    kwargs = {k.arg: None for k in node.keywords if k.arg}
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        return f"line {node.lineno}: {name}(): {exc}"
    return None


def _annotation_ok(node: ast.expr | None) -> bool:
    if node is None:
        return True
    if isinstance(node, ast.Name):
        return node.id in TYPES
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        return node.value.id in ("list", "dict")
    return isinstance(node, ast.Constant) and node.value is None


def parse_plan(text: str, tools: dict[str, Callable[..., Any]]) -> Plan:
    """Parse and check a plan against the tools it may call; raises PlanError."""
    source = _clean(text)
    if not source:
        raise PlanError(["the plan is empty"])
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise PlanError([f"line {exc.lineno}: {exc.msg}"]) from exc
    problems: list[str] = []
    calls: list[tuple[int, int, str]] = []
    evidence: list[str] = []
    defined = set(BUILTINS)
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            line = getattr(node, "lineno", "?")
            problems.append(f"line {line}: {type(node).__name__} is not allowed in a plan")
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name is None:
                problems.append(f"line {node.lineno}: only named tools can be called")
            elif name in tools:
                calls.append((node.lineno, node.col_offset, name))
                problem = _signature_problem(name, tools[name], node)
                if problem:
                    problems.append(problem)
            elif name not in BUILTINS:
                problems.append(f"line {node.lineno}: unknown tool {name}()")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            problems.append(f"line {node.lineno}: private attribute {node.attr}")
        elif isinstance(node, ast.AnnAssign) and not _annotation_ok(node.annotation):
            problems.append(f"line {node.lineno}: unknown type {ast.unparse(node.annotation)}")
    _check_names(tree.body, defined | set(tools), problems, evidence)
    if not calls and not problems:
        problems.append("the plan calls no tool")
    if problems:
        raise PlanError(problems)
    return Plan(source, tree, [name for *_, name in sorted(calls)], evidence)


def _targets(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _check_names(body: list[ast.stmt], defined: set[str], problems: list[str],
                 evidence: list[str]) -> None:
    """Every name is assigned (in plan order) before it is read."""
    for stmt in body:
        reads: list[ast.AST] = []
        if isinstance(stmt, ast.For):
            reads = [stmt.iter]
        elif isinstance(stmt, ast.If):
            reads = [stmt.test]
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.Expr):
            reads = [stmt.value] if stmt.value is not None else []
            if isinstance(stmt, ast.Assign):
                reads += [t for t in stmt.targets if not isinstance(t, ast.Name)]
        for tree in reads:
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and node.id not in defined:
                    problems.append(f"line {node.lineno}: {node.id} is used before it is set")
                    defined.add(node.id)  # report once
        for name in _targets(stmt):
            defined.add(name)
            if re.fullmatch(r"E\d+", name) and name not in evidence:
                evidence.append(name)
        if isinstance(stmt, ast.For | ast.If):
            _check_names(stmt.body, defined, problems, evidence)
            _check_names(stmt.orelse, defined, problems, evidence)


def describe_tools(tools: dict[str, Callable[..., Any]]) -> str:
    """`name(arg: type, ...) -> type  # first docstring line`, one per tool."""
    lines = []
    for name, fn in tools.items():
        try:
            signature = str(inspect.signature(fn)).replace("'", "")
        except (TypeError, ValueError):
            signature = "(...)"
        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        lines.append(f"{name}{signature}" + (f"  # {doc[0]}" if doc else ""))
    return "\n".join(lines)

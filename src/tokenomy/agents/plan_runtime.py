"""Running a checked plan (see `plans.py`) node by node; nothing is `exec`-ed.

Tools may be plain or async callables. A tool that raises becomes evidence
(`"error: ..."`) rather than an exception, so the solver can still answer.
"""

from __future__ import annotations

import ast
import inspect
import operator as op
import time
from collections.abc import Callable
from typing import Any

from tokenomy.agents.plans import BUILTINS, MAX_STEPS, TYPES, Plan, PlanRun, ToolCall


class PlanRuntimeError(RuntimeError):
    pass


class Interpreter:
    """Runs a checked plan; tools may be plain or async callables."""

    def __init__(self, tools: dict[str, Callable[..., Any]], max_steps: int = MAX_STEPS):
        self.tools = tools
        self.max_steps = max_steps
        self.run = PlanRun()
        self.steps = 0

    async def execute(self, plan: Plan) -> PlanRun:
        await self.block(plan.tree.body)
        return self.run

    async def block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.steps += 1
            if self.steps > self.max_steps:
                raise PlanRuntimeError(f"the plan ran more than {self.max_steps} steps")
            await self.statement(stmt)

    async def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign):
            value = await self.eval(stmt.value)
            for target in stmt.targets:
                await self.assign(target, value)
        elif isinstance(stmt, ast.AnnAssign):
            value = await self.eval(stmt.value) if stmt.value is not None else None
            self.check_type(stmt, value)
            await self.assign(stmt.target, value)
        elif isinstance(stmt, ast.Expr):
            await self.eval(stmt.value)
        elif isinstance(stmt, ast.For):
            for item in list(await self.eval(stmt.iter)):
                await self.assign(stmt.target, item)
                await self.block(stmt.body)
        elif isinstance(stmt, ast.If):
            await self.block(stmt.body if await self.eval(stmt.test) else stmt.orelse)

    def check_type(self, stmt: ast.AnnAssign, value: Any) -> None:
        annotation = stmt.annotation
        name = annotation.value if isinstance(annotation, ast.Subscript) else annotation
        expected = TYPES.get(name.id) if isinstance(name, ast.Name) else None
        if expected is not None and value is not None and not isinstance(value, expected):
            self.run.warnings.append(
                f"line {stmt.lineno}: expected {ast.unparse(annotation)}, "
                f"got {type(value).__name__}")

    async def assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.run.variables[target.id] = value
        elif isinstance(target, ast.Subscript):
            container = await self.eval(target.value)
            container[await self.eval(target.slice)] = value
        elif isinstance(target, ast.Tuple):
            for part, item in zip(target.elts, value, strict=True):
                await self.assign(part, item)
        else:
            raise PlanRuntimeError(f"line {target.lineno}: cannot assign to this")

    async def call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        args = [await self.eval(a) for a in node.args]
        kwargs = {k.arg: await self.eval(k.value) for k in node.keywords if k.arg}
        if name in BUILTINS and name not in self.tools:
            return BUILTINS[name](*args, **kwargs)
        fn = self.tools[name]
        bound = inspect.signature(fn).bind(*args, **kwargs)
        record = ToolCall(name, dict(bound.arguments))
        started = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            record.result = result
        except Exception as exc:  # the solver sees the failure as evidence
            record.error = f"{type(exc).__name__}: {exc}"
            result = f"error: {record.error}"
        record.ms = (time.perf_counter() - started) * 1000
        self.run.calls.append(record)
        return result

    async def eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in self.run.variables:
                return self.run.variables[node.id]
            raise PlanRuntimeError(f"line {node.lineno}: {node.id} is not set")
        if isinstance(node, ast.Call):
            return await self.call(node)
        if isinstance(node, ast.List | ast.Tuple):
            return [await self.eval(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {await self.eval(k): await self.eval(v)
                    for k, v in zip(node.keys, node.values, strict=True) if k is not None}
        if isinstance(node, ast.Attribute):
            base = await self.eval(node.value)
            if isinstance(base, dict):
                return base.get(node.attr)
            return getattr(base, node.attr)
        if isinstance(node, ast.Subscript):
            base = await self.eval(node.value)
            if isinstance(node.slice, ast.Slice):
                parts = [await self.eval(p) if p is not None else None
                         for p in (node.slice.lower, node.slice.upper, node.slice.step)]
                return base[slice(*parts)]
            return base[await self.eval(node.slice)]
        if isinstance(node, ast.JoinedStr):
            return "".join([str(await self.eval(v)) for v in node.values])
        if isinstance(node, ast.FormattedValue):
            value = await self.eval(node.value)
            spec = await self.eval(node.format_spec) if node.format_spec else ""
            return format(value, spec)
        if isinstance(node, ast.IfExp):
            return await self.eval(node.body if await self.eval(node.test) else node.orelse)
        return await self.operators(node)

    async def operators(self, node: ast.expr) -> Any:
        binary = {ast.Add: op.add, ast.Sub: op.sub, ast.Mult: op.mul, ast.Div: op.truediv,
                  ast.FloorDiv: op.floordiv, ast.Mod: op.mod}
        compare = {ast.Eq: op.eq, ast.NotEq: op.ne, ast.Lt: op.lt, ast.LtE: op.le,
                   ast.Gt: op.gt, ast.GtE: op.ge, ast.In: lambda a, b: a in b,
                   ast.NotIn: lambda a, b: a not in b, ast.Is: op.is_, ast.IsNot: op.is_not}
        if isinstance(node, ast.BinOp):
            return binary[type(node.op)](await self.eval(node.left), await self.eval(node.right))
        if isinstance(node, ast.UnaryOp):
            operand = await self.eval(node.operand)
            unary: dict[type, Any] = {ast.Not: op.not_, ast.USub: op.neg, ast.UAdd: op.pos}
            return unary[type(node.op)](operand)
        if isinstance(node, ast.BoolOp):
            value: Any = None
            for part in node.values:
                value = await self.eval(part)
                if isinstance(node.op, ast.And) != bool(value):
                    return value
            return value
        if isinstance(node, ast.Compare):
            left = await self.eval(node.left)
            for oper, right_node in zip(node.ops, node.comparators, strict=True):
                right = await self.eval(right_node)
                if not compare[type(oper)](left, right):
                    return False
                left = right
            return True
        raise PlanRuntimeError(f"line {getattr(node, 'lineno', '?')}: unsupported expression")


async def run_plan(plan: Plan, tools: dict[str, Callable[..., Any]],
                   max_steps: int = MAX_STEPS) -> PlanRun:
    return await Interpreter(tools, max_steps).execute(plan)

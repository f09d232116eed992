"""Agents built from codified plans: CodeAgents-style plans, their runtime, and ReWOO."""

from tokenomy.agents.plan_runtime import run_plan
from tokenomy.agents.plans import PlanError, parse_plan
from tokenomy.agents.rewoo import ReWOO, build_rewoo_graph

__all__ = ["PlanError", "ReWOO", "build_rewoo_graph", "parse_plan", "run_plan"]

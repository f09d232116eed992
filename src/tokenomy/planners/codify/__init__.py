"""Structured codified prompting: typed schemas, 5C prompt contracts, codified plans.

- `CodifyStage` (stage name "codify"): typed definitions for JSON Schemas and
  tool lists pasted into prompts, compact JSON data, stored 5C contracts for
  teams that opt in.
- `render_schema` / `render_tools` / `render_model` and their parser
  (`typed_parse.parse_schema` / `parse_tools`).
- `make_contract`, `rule_contract`, `validate` and the `ContractStore`;
  the `tokenomy contract` command lives in `codify/cli.py`.
- `parse_plan` / `run_plan` for CodeAgents-style plans, `ReWOO` and
  `build_rewoo_graph` for plan-then-execute agents (LangGraph).
"""

from tokenomy.planners.codify.contract_store import ContractStore
from tokenomy.planners.codify.contracts import make_contract, rule_contract, validate
from tokenomy.planners.codify.plan_runtime import run_plan
from tokenomy.planners.codify.plans import PlanError, parse_plan
from tokenomy.planners.codify.rewoo import ReWOO, build_rewoo_graph
from tokenomy.planners.codify.stage import CodifyStage
from tokenomy.planners.codify.typed import render_model, render_schema, render_tools

__all__ = [
    "CodifyStage",
    "ContractStore",
    "PlanError",
    "ReWOO",
    "build_rewoo_graph",
    "make_contract",
    "parse_plan",
    "render_model",
    "render_schema",
    "render_tools",
    "rule_contract",
    "run_plan",
    "validate",
]

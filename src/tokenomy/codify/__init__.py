"""Codified prompting: typed schemas, 5C prompt contracts, compact JSON data, and its stage.

- `CodifyStage` (stage name "codify"): typed definitions for JSON Schemas and
  tool lists pasted into prompts, compact JSON data, stored 5C contracts for
  teams that opt in.
- `render_schema` / `render_tools` / `render_model` and their parser
  (`typed_parse.parse_schema` / `parse_tools`).
- `make_contract`, `rule_contract`, `validate` and the `ContractStore`;
  the `tokenomy contract` command lives in `codify/cli.py`.

Plans and ReWOO agents live in `tokenomy.agents`.
"""

from tokenomy.codify.contract_store import ContractStore
from tokenomy.codify.contracts import make_contract, rule_contract, validate
from tokenomy.codify.stage import CodifyStage
from tokenomy.codify.typed import render_model, render_schema, render_tools

__all__ = [
    "CodifyStage",
    "ContractStore",
    "make_contract",
    "render_model",
    "render_schema",
    "render_tools",
    "rule_contract",
    "validate",
]

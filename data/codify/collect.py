"""Rebuild data/codify/ from packages installed with tokenomy (see README.md there).

Run: python data/codify/collect.py   (idempotent; writes schemas/, tools/, outputs/)
Every file is copied or derived from a PyPI package or from /work/shared/data;
the sources and licenses are listed in data/codify/README.md.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

HERE = Path(__file__).parent


def _pkg_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec and spec.submodule_search_locations, package
    return Path(next(iter(spec.submodule_search_locations))) / relative


def _write(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def schemas() -> None:
    from openai.types.chat import ChatCompletion
    from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
    from pydantic import TypeAdapter

    copies = {
        "schemathesis_config.json": ("schemathesis", "config/schema.json"),
        "setuptools_pyproject.json": ("setuptools", "config/setuptools.schema.json"),
        "jsonschema_draft7.json": ("jsonschema_specifications", "schemas/draft7/metaschema.json"),
    }
    for name, (package, relative) in copies.items():
        _write(HERE / "schemas" / name, json.loads(_pkg_file(package, relative).read_text()))
    _write(HERE / "schemas" / "openai_chat_completion.json", ChatCompletion.model_json_schema())
    _write(HERE / "schemas" / "openai_chat_create_params.json",
           TypeAdapter(CompletionCreateParamsNonStreaming).json_schema())
    spec = json.loads(_pkg_file("litellm", "proxy/openapi.json").read_text())
    body = spec["paths"]["/chat/completions"]["post"]["requestBody"]
    _write(HERE / "schemas" / "litellm_chat_request.json",
           body["content"]["application/json"]["schema"])


def openapi() -> None:
    """Three routers of the LiteLLM proxy, as FastAPI generated their OpenAPI documents."""
    snapshot = json.loads(_pkg_file("litellm", "proxy/_lazy_openapi_snapshot.json").read_text())
    for router in ("access_groups", "agents", "mcp_management"):
        spec = {"openapi": "3.1.0", "info": {"title": f"LiteLLM proxy: {router}",
                                             "version": "1.106.2"}, **snapshot[router]}
        _write(HERE / "openapi" / f"litellm_{router}.json", spec)
    spec = json.loads(_pkg_file("litellm", "proxy/openapi.json").read_text())
    _write(HERE / "openapi" / "litellm_proxy_core.json", spec)


def outputs() -> None:
    prices = json.loads(_pkg_file("litellm", "model_prices_and_context_window_backup.json")
                        .read_text())
    fields = ["litellm_provider", "mode", "max_input_tokens", "max_output_tokens",
              "input_cost_per_token", "output_cost_per_token", "supports_function_calling"]
    rows = [{"model": name, **{f: info.get(f) for f in fields}}
            for name, info in prices.items()
            if name != "sample_spec" and info.get("mode") == "chat"][:60]
    _write(HERE / "outputs" / "litellm_model_prices.json", rows)
    registry = json.loads(_pkg_file("litellm", "proxy/mcp_registry.json").read_text())
    _write(HERE / "outputs" / "litellm_mcp_registry.json", registry)
    fields = json.loads(_pkg_file("litellm", "proxy/public_endpoints/provider_create_fields.json")
                        .read_text())
    _write(HERE / "outputs" / "litellm_provider_fields.json", fields[:40])
    gsm = Path("/work/shared/data/gsm8k.dev.jsonl")
    if gsm.exists():
        lines = gsm.read_text().splitlines()[:25]
        _write(HERE / "outputs" / "gsm8k_search_results.json",
               {"query": "grade school math", "results": [json.loads(x) for x in lines]})


def _constant(package: str, relative: str, name: str) -> str:
    """A module-level string constant, read with `ast` (the module is not imported)."""
    import ast

    tree = ast.parse(_pkg_file(package, relative).read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == name:
            value = ast.literal_eval(node.value)  # type: ignore[attr-defined]
            assert isinstance(value, str)
            return value
    raise KeyError(name)


def prompts() -> None:
    sources = {
        "litellm_usage_chat.txt": ("litellm", "proxy/management_endpoints/usage_endpoints/"
                                   "ai_usage_chat.py", "_SYSTEM_PROMPT_BASE"),
        "litellm_pairwise_judge.txt": ("litellm", "integrations/shadow_eval_logger.py",
                                       "PAIRWISE_JUDGE_SYSTEM_PROMPT"),
        "langchain_write_todos.txt": ("langchain", "agents/middleware/todo.py",
                                      "WRITE_TODOS_SYSTEM_PROMPT"),
        "langchain_summary.txt": ("langchain", "agents/middleware/summarization.py",
                                  "DEFAULT_SUMMARY_PROMPT"),
    }
    for name, (package, relative, constant) in sources.items():
        path = HERE / "prompts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_constant(package, relative, constant), encoding="utf-8")


if __name__ == "__main__":
    schemas()
    openapi()
    outputs()
    prompts()

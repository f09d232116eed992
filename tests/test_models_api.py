"""GET /v1/models and /v1/models/{id} through the `openai` SDK, against a real `tokenomy serve`:
every model states its backend, context length and prices (litellm's cost map, or the
config's own prices); an unknown id is OpenAI's 404 `model_not_found`."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tokenomy.budgets.cost import model_info
from tokenomy.testing.processes import Server, echo_config, run_proxy


@pytest.fixture(scope="module")
def client(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    config = echo_config(
        upstream.v1,
        models={"mini": {"backend": "test", "model": "gpt-4o-mini"},
                "house": {"backend": "test", "model": "house-model",
                          "input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6}},
        default_backend=None,  # only the aliases exist (with one, any name would route)
    )
    with run_proxy(config, folder=tmp_path_factory.mktemp("models")) as proxy:
        yield openai.OpenAI(base_url=proxy.v1, api_key="unused", max_retries=0)


def test_list_states_context_and_prices(client: openai.OpenAI) -> None:
    models = {model.id: model for model in client.models.list()}
    assert {"echo", "mini", "house"} <= set(models)
    mini = models["mini"].model_dump()
    known = model_info("gpt-4o-mini")
    assert known is not None
    assert mini["owned_by"] == "tokenomy" and mini["upstream_model"] == "gpt-4o-mini"
    assert mini["context_length"] == known["max_input_tokens"]
    assert mini["max_output_tokens"] == known["max_output_tokens"]
    assert mini["pricing"]["input_cost_per_token"] == known["input_cost_per_token"]
    assert mini["pricing"]["output_cost_per_token"] == known["output_cost_per_token"]
    assert mini["pricing"]["cache_read_input_token_cost"] == known["cache_read_input_token_cost"]
    house = models["house"].model_dump()
    assert house["pricing"]["input_cost_per_token"] == 2e-6  # the alias's own price
    assert "context_length" not in house  # not in litellm's map: nothing made up


def test_retrieve_one_model(client: openai.OpenAI) -> None:
    model = client.models.retrieve("mini")
    assert model.id == "mini" and model.object == "model"
    assert model.model_dump()["context_length"] > 0


def test_retrieve_an_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"
    assert "no-such-model" in caught.value.message

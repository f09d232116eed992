"""The embedded SmolLM2 backend answers real chat requests, with no config and no network."""

from __future__ import annotations

import openai
import pytest

from tokenomy.testing.processes import Server

pytestmark = pytest.mark.slow


def test_local_model_answers(local_proxy: Server) -> None:
    client = openai.OpenAI(base_url=local_proxy.v1, api_key="unused", timeout=120)
    raw = client.chat.completions.with_raw_response.create(
        model="local", messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24,
    )
    completion = raw.parse()
    assert "paris" in completion.choices[0].message.content.lower()
    # The local model is counted with its own chat template: header and usage agree exactly.
    assert int(raw.headers["x-tokenomy-prompt-tokens-original"]) == completion.usage.prompt_tokens
    assert 0 < completion.usage.completion_tokens <= 24


def test_local_model_streams(local_proxy: Server) -> None:
    client = openai.OpenAI(base_url=local_proxy.v1, api_key="unused", timeout=120)
    stream = client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "Name three colors."}],
        max_tokens=20, stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].usage.completion_tokens <= 20
    assert [m.id for m in client.models.list()] == ["local", "smollm2-135m-instruct"]


@pytest.mark.parametrize(("field", "extra"), [
    ("tools", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
    ("tool_choice", {"tool_choice": "required"}),
    ("response_format", {"response_format": {"type": "json_object"}}),
    ("n", {"n": 2}),
    ("logprobs", {"logprobs": True}),
])
def test_local_model_refuses_what_it_cannot_do(local_proxy: Server, field: str,
                                               extra: dict[str, object]) -> None:
    # A 135M model in process cannot call tools, follow a schema, give several choices or
    # log probabilities: a clear 400 naming the field, not prose that ignores it.
    client = openai.OpenAI(base_url=local_proxy.v1, api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="local", messages=[{"role": "user", "content": "hi"}], extra_body=extra)
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == field
    assert "local model" in error["message"] and "does not support" in error["message"]

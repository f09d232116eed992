"""Exact prompt-token counts per family, checked against OpenAI's documented numbers."""

from __future__ import annotations

from tokenomy.tokenizers import count_messages, count_text, family_of, get_encoder

# OpenAI cookbook, "How to count tokens with tiktoken": the API reported 124 prompt
# tokens for gpt-4o / gpt-4o-mini and 129 for gpt-4 / gpt-3.5-turbo on these messages.
COOKBOOK_MESSAGES = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that "
     "translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user",
     "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant",
     "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more "
     "bandwidth to touch base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant",
     "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean "
     "for the client deliverable."},
]


def test_gpt4o_matches_openai_usage() -> None:
    assert count_messages(COOKBOOK_MESSAGES, "gpt-4o") == 124
    assert count_messages(COOKBOOK_MESSAGES, "gpt-4o-mini") == 124
    assert count_messages(COOKBOOK_MESSAGES, "openai/gpt-4o-2024-08-06") == 124


def test_gpt4_and_35_match_openai_usage() -> None:
    assert count_messages(COOKBOOK_MESSAGES, "gpt-4-0613") == 129
    assert count_messages(COOKBOOK_MESSAGES, "gpt-3.5-turbo") == 129


def test_families() -> None:
    assert family_of("gpt-4o") == "openai-o200k"
    assert family_of("o3-mini") == "openai-o200k"
    assert family_of("gpt-4-turbo") == "openai-cl100k"
    assert family_of("claude-3-5-sonnet-20241022") == "anthropic"
    assert family_of("anthropic/claude-sonnet-4") == "anthropic"
    assert family_of("smollm2-135m-instruct") == "local"
    assert family_of("mistral-large") == "fallback"


def test_encoders_are_cached_and_distinct() -> None:
    assert get_encoder("gpt-4o") is get_encoder("gpt-4o-mini")
    assert get_encoder("gpt-4o") is not get_encoder("gpt-4")
    text = "Tokenomy counts tokens exactly: 12,345 of them."
    assert count_text(text, "gpt-4o") != count_text(text, "claude-3-opus")
    assert count_text("", "gpt-4o") == 0


def test_anthropic_uses_its_own_tokenizer() -> None:
    assert get_encoder("claude-3-haiku").family == "anthropic"
    assert count_text("hello world", "claude-3-haiku") == 2


def test_local_counts_with_chat_template() -> None:
    from tokenomy.scoring import load_small_lm

    lm = load_small_lm()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert count_messages(messages, "smollm2-135m-instruct") == len(ids)


def test_tools_add_tokens() -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "x",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    plain = count_messages(COOKBOOK_MESSAGES, "gpt-4o")
    assert count_messages(COOKBOOK_MESSAGES, "gpt-4o", tools) > plain

"""Exact prompt-token counts per model family, with cached offline encoders.

`count_text(text, model)` counts a string in the model's own tokens;
`count_messages(messages, model, tools=None)` counts a chat prompt the way the
provider bills it (OpenAI's per-message overhead, or the local model's chat
template). Unknown families are counted in cl100k with OpenAI's framing, which is
litellm's `token_counter` default for them (without importing litellm per request).
"""

from tokenomy.tokenizers.counting import count_messages, count_text, message_text
from tokenomy.tokenizers.encoders import Encoder, family_of, get_encoder

__all__ = ["Encoder", "count_messages", "count_text", "family_of", "get_encoder", "message_text"]

"""The local reader: SmolLM2 answers a question from a context, greedily and briefly.

A 135M model is a weak reader, so its accuracy is a relative signal: the same
reader on the full context and on each compressed context tells whether
compression kept what the answer needs. Judge: a gold answer string occurs in
the reply (case-insensitive).
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenomy.scoring import load_small_lm

SYSTEM = "You answer questions with a short phrase copied from the documents."
MAX_NEW_TOKENS = 32
MAX_PROMPT_TOKENS = 7000  # SmolLM2 has an 8k window


class Reader:
    def __init__(self, device: str | None = None):
        self.lm = load_small_lm(device)

    def answer(self, context: str, question: str) -> str:
        import torch

        tok = self.lm.tokenizer
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Documents:\n{context}\n\nQuestion: {question}\n"
                                        "Reply with the short answer phrase only."},
        ]
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                      return_dict=True)["input_ids"]
        ids = ids[:, -MAX_PROMPT_TOKENS:]
        with self.lm.lock, torch.inference_mode():
            out = self.lm.model.generate(
                ids.to(self.lm.device),
                attention_mask=torch.ones_like(ids).to(self.lm.device),
                max_new_tokens=MAX_NEW_TOKENS,
                do_sample=False,
                pad_token_id=tok.eos_token_id,
            )
        return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def judge(reply: str, answers: Sequence[str]) -> bool:
    reply = reply.lower()
    return any(answer.lower() in reply for answer in answers if answer)

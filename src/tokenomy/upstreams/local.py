"""The embedded backend: SmolLM2-135M-Instruct in process, so a fresh machine answers.

Generation runs in a worker thread (never on the event loop), one request at a
time per model: two CPU-bound generations in parallel are slower than in turn.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from tokenomy.config import BackendSettings
from tokenomy.errors import BadRequest, UpstreamError
from tokenomy.tokenizers import message_text
from tokenomy.transcript import OPENAI_CHAT, WireProtocol
from tokenomy.upstreams.base import speaks

LOCAL_MODEL_NAME = "smollm2-135m-instruct"
LOCAL_CONTEXT_TOKENS = 8192  # SmolLM2's max_position_embeddings (what /v1/models states)
DEFAULT_MAX_TOKENS = 256
MAX_TOKENS_CAP = 2048


SPOKEN = frozenset({"openai.chat"})


def refuse_unsupported(body: dict[str, Any]) -> None:
    """A clear 400 for what a 135M chat model in process cannot do, instead of prose that
    ignores it: tools, a response format, several choices, log probabilities, non-text
    content."""
    asked: list[tuple[str, str]] = []
    if body.get("tools") or body.get("functions"):
        asked.append(("tools", "tool calling"))
    if body.get("tool_choice") not in (None, "none") or body.get("function_call") not in (
            None, "none"):
        asked.append(("tool_choice", "tool choice"))
    fmt = body.get("response_format")
    if (isinstance(fmt, dict) and fmt.get("type") not in (None, "text")) or isinstance(fmt, str):
        asked.append(("response_format", "structured output (response_format)"))
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        asked.append(("n", f"n={n} choices"))
    if body.get("logprobs") or body.get("top_logprobs"):
        asked.append(("logprobs", "log probabilities"))
    for i, message in enumerate(body.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and part.get("type") not in ("text", "input_text"):
                asked.append((f"messages[{i}].content", f"{part.get('type')} content"))
                break
    if asked:
        param, _ = asked[0]
        raise BadRequest(
            f"the local model ({LOCAL_MODEL_NAME}) does not support "
            f"{', '.join(what for _, what in asked)}; send the request to a backend that does, "
            "or leave those fields out",
            param=param, code="unsupported_parameter",
        )


class LocalModel:
    spoken = SPOKEN

    def __init__(self, name: str, settings: BackendSettings):
        self.name = name
        self.settings = settings
        self._device = settings.provider_params.get("device")

    async def aclose(self) -> None:
        return None

    def _lm(self) -> Any:
        from tokenomy.scoring import load_small_lm

        return load_small_lm(self._device)

    def _prepare(self, body: dict[str, Any]) -> tuple[Any, dict[str, Any], list[str]]:
        lm = self._lm()
        messages = [
            {"role": str(m.get("role") or "user"), "content": message_text(m.get("content"))}
            for m in body.get("messages") or []
        ]
        encoded = lm.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        input_ids = encoded["input_ids"].to(lm.device)
        context = lm.model.config.max_position_embeddings
        max_new = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
        max_new = max(1, min(int(max_new), MAX_TOKENS_CAP, context - input_ids.shape[1]))
        if input_ids.shape[1] >= context:
            raise BadRequest(
                f"the prompt has {input_ids.shape[1]} tokens; the local model's context is "
                f"{context}", code="context_length_exceeded", param="messages",
            )
        raw_temperature = body.get("temperature")
        temperature = float(raw_temperature) if isinstance(raw_temperature, int | float) else 0.0
        params: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": encoded["attention_mask"].to(lm.device),
            "max_new_tokens": max_new,
            "pad_token_id": lm.tokenizer.eos_token_id,
        }
        if temperature > 0:
            params.update(do_sample=True, temperature=temperature,
                          top_p=float(body.get("top_p") or 1.0))
        else:
            params.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        return lm, params, stop

    @staticmethod
    def _cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
        cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
        return (text[:cut], True) if cut >= 0 else (text, False)

    def _generate(self, body: dict[str, Any]) -> tuple[str, int, int, str]:
        import torch

        lm, params, stop = self._prepare(body)
        with lm.lock, torch.inference_mode():
            output = lm.model.generate(**params)
        prompt_len = params["input_ids"].shape[1]
        new_ids = output[0][prompt_len:]
        text = lm.tokenizer.decode(new_ids, skip_special_tokens=True)
        text, stopped = self._cut_at_stop(text, stop)
        ended = stopped or (len(new_ids) and int(new_ids[-1]) == lm.tokenizer.eos_token_id)
        finish = "stop" if ended or len(new_ids) < params["max_new_tokens"] else "length"
        return text.strip(), prompt_len, len(new_ids), finish

    @staticmethod
    def _usage(prompt: int, completion: int) -> dict[str, int]:
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    async def complete(self, body: dict[str, Any], *, protocol: WireProtocol = OPENAI_CHAT,
                       headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        speaks(self.name, protocol, SPOKEN)
        refuse_unsupported(body)
        try:
            text, prompt, completion, finish = await asyncio.to_thread(self._generate, body)
        except BadRequest:
            raise
        except Exception as exc:
            raise UpstreamError(f"local model failed: {type(exc).__name__}: {exc}") from exc
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or LOCAL_MODEL_NAME,
            "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                         "message": {"role": "assistant", "content": text}}],
            "usage": self._usage(prompt, completion),
        }

    async def open_stream(self, body: dict[str, Any], *, protocol: WireProtocol = OPENAI_CHAT,
                          headers: Mapping[str, str] | None = None
                          ) -> AsyncIterator[dict[str, Any]]:
        speaks(self.name, protocol, SPOKEN)
        refuse_unsupported(body)
        lm, params, stop = await asyncio.to_thread(self._prepare, body)
        return self._stream(lm, params, stop, body)

    async def _stream(
        self, lm: Any, params: dict[str, Any], stop: list[str], body: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        streamer = TextIteratorStreamer(lm.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancelled = threading.Event()

        class StopWhenCancelled(StoppingCriteria):
            # A client that went away, or a stop sequence, ends generation early.
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return cancelled.is_set()

        params = {**params, "stopping_criteria": StoppingCriteriaList([StopWhenCancelled()])}

        def pump() -> None:
            for piece in streamer:
                if not cancelled.is_set():  # after a stop sequence, just drain
                    loop.call_soon_threadsafe(queue.put_nowait, ("text", piece))

        def run() -> None:
            pumper = threading.Thread(target=pump, daemon=True)
            pumper.start()
            try:
                with lm.lock, torch.inference_mode():
                    out = lm.model.generate(**params, streamer=streamer)
                completion = int(out.shape[1] - params["input_ids"].shape[1])
            except Exception as exc:  # surfaced to the consumer as an upstream error
                streamer.end()
                pumper.join()
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
                return
            pumper.join()  # every text piece is queued before the end marker
            loop.call_soon_threadsafe(queue.put_nowait, ("end", completion))

        threading.Thread(target=run, daemon=True).start()

        ident = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        model = body.get("model") or LOCAL_MODEL_NAME

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"id": ident, "object": "chat.completion.chunk", "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                 "logprobs": None}]}

        yield chunk({"role": "assistant", "content": ""})
        text_so_far = ""
        stopped = False
        completion = 0
        try:
            while True:
                kind, value = await queue.get()
                if kind == "error":
                    raise UpstreamError(f"local model failed mid-stream: {value}")
                if kind == "end":
                    completion = int(value)
                    break
                if stopped:
                    continue
                candidate, stopped = self._cut_at_stop(text_so_far + value, stop)
                piece = candidate[len(text_so_far):]
                text_so_far = candidate
                if piece:
                    yield chunk({"content": piece})
                if stopped:
                    cancelled.set()
        finally:
            cancelled.set()
        prompt_len = int(params["input_ids"].shape[1])
        finish = "stop" if stopped or completion < params["max_new_tokens"] else "length"
        yield chunk({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            yield {"id": ident, "object": "chat.completion.chunk", "created": created,
                   "model": model, "choices": [], "usage": self._usage(prompt_len, completion)}

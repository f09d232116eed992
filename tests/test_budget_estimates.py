"""What a request reserves: images, audio, files, `n` and the output cap, priced by each
provider's documented rules, read back from a real proxy's 429 (`requested_tokens`).

A team with a 1-token budget refuses everything and says what each request needed;
the same request without its media says what the text needed, so the difference is
what the media were priced at. On the old code a 3 MB base64 image and 50 high-detail
image URLs were both reserved as a few text tokens, and `n` was ignored.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from budget_support import sqlite_url
from tokenomy.testing.processes import Server, echo_config, run_proxy
from tokenomy.transcript.media import Media, image_size, media_tokens


def png(width: int, height: int, size: int = 0) -> str:
    """A PNG whose header says width x height, padded to `size` bytes (only the header
    is read, as the proxy reads it)."""
    head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(
        ">IIBBBBB", width, height, 8, 6, 0, 0, 0) + b"\0\0\0\0"
    return base64.b64encode(head + b"\0" * max(0, size - len(head))).decode()


def jpeg(width: int, height: int) -> str:
    """SOI, a JFIF APP0 segment, an EXIF-sized APP1, then the frame header (SOF0)."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    app1 = b"\xff\xe1" + struct.pack(">H", 30_002) + b"\0" * 30_000
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\0" * 3
    return base64.b64encode(b"\xff\xd8" + app0 + app1 + sof + b"\xff\xd9").decode()


def wav(seconds: float, rate: int = 16_000) -> str:
    data = b"\0\0" * int(seconds * rate)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(data))
    return base64.b64encode(header + data).decode()


@pytest.fixture(scope="module")
def proxy(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("estimates")
    models = {name: {"backend": "test", "model": name} for name in (
        "gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "claude-3-5-sonnet-20241022",
        "gpt-4o-audio-preview")}
    config = echo_config(upstream.v1, models=models,
                         ledger={"url": sqlite_url(folder)},
                         teams={"tiny": {"tokens": 1, "window": "1d"}},
                         server={"max_body_bytes": 8 * 1024 * 1024})
    with run_proxy(config, folder=folder) as server:
        yield server


def needed(proxy: Server, model: str, parts: list[dict[str, Any]] | None = None,
           **body: Any) -> int:
    content: Any = [{"type": "text", "text": "describe this"}, *(parts or [])]
    payload = {"model": model, "messages": [{"role": "user", "content": content}],
               "max_tokens": 10, "tokenomy": {"team": "tiny"}, **body}
    response = httpx.post(proxy.v1 + "/chat/completions", json=payload, timeout=60)
    assert response.status_code == 429, response.text
    return int(response.json()["error"]["requested_tokens"])


def image(data: str | None = None, url: str | None = None, detail: str = "high",
          kind: str = "png") -> dict[str, Any]:
    src = url or f"data:image/{kind};base64,{data}"
    return {"type": "image_url", "image_url": {"url": src, "detail": detail}}


def test_openai_images_by_tiles(proxy: Server) -> None:
    text = needed(proxy, "gpt-4o")
    # 1024x1024 -> 768x768: 4 tiles of 170 + 85; low detail: 85 whatever the size.
    assert needed(proxy, "gpt-4o", [image(png(1024, 1024))]) - text == 765
    assert needed(proxy, "gpt-4o", [image(png(1024, 1024), detail="low")]) - text == 85
    # gpt-4o-mini bills the same tiles at 2833 + 5667 each.
    mini = needed(proxy, "gpt-4o-mini")
    assert needed(proxy, "gpt-4o-mini", [image(png(512, 512))]) - mini == 2833 + 5667
    # A JPEG's size is read from its frame header, past a 30 KB EXIF segment.
    assert needed(proxy, "gpt-4o", [image(jpeg(2048, 4096), kind="jpeg")]) - text == 1105


def test_a_3mb_base64_image_and_50_image_urls(proxy: Server) -> None:
    text = needed(proxy, "gpt-4o")
    big = png(4096, 4096, size=3 * 1024 * 1024)  # 4 MB of base64
    assert needed(proxy, "gpt-4o", [image(big)]) - text == 765  # 2048^2 -> 768^2: 4 tiles
    # A URL's size is unknown: each costs the most a high-detail image can (8 tiles).
    urls = [image(url=f"https://example.com/{i}.png") for i in range(50)]
    assert needed(proxy, "gpt-4o", urls) - text == 50 * (85 + 8 * 170)


def test_patch_models_anthropic_and_audio(proxy: Server) -> None:
    mini = needed(proxy, "gpt-4.1-mini")
    # 32 x 32 patches of 32 px, times gpt-4.1-mini's multiplier 1.62.
    assert needed(proxy, "gpt-4.1-mini", [image(png(1024, 1024))]) - mini == 1659
    claude = needed(proxy, "claude-3-5-sonnet-20241022")
    # Anthropic: width * height / 750, and never more than ~1600 (scaled down first).
    assert needed(proxy, "claude-3-5-sonnet-20241022",
                  [image(png(1000, 1000))]) - claude == 1334
    assert needed(proxy, "claude-3-5-sonnet-20241022",
                  [image(png(4000, 3000))]) - claude == 1600
    audio = needed(proxy, "gpt-4o-audio-preview")
    clip = {"type": "input_audio", "input_audio": {"data": wav(10), "format": "wav"}}
    # 10 s (and the 44-byte header) at 1 token per 100 ms.
    assert needed(proxy, "gpt-4o-audio-preview", [clip]) - audio == 101


def test_n_choices_and_the_output_cap(proxy: Server) -> None:
    one = needed(proxy, "gpt-4o")
    assert needed(proxy, "gpt-4o", n=100) - one == 99 * 10  # every choice's output
    # No cap: gpt-4o's documented maximum output (16,384) is what can be billed.
    uncapped = needed(proxy, "gpt-4o", max_tokens=None)
    assert uncapped - one == 16_384 - 10
    huge = httpx.post(proxy.v1 + "/chat/completions", timeout=30, json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2**63 - 1, "tokenomy": {"team": "tiny"}})
    assert huge.status_code == 400 and huge.json()["error"]["param"] == "max_tokens"


def test_unknown_models_get_a_cap_written(upstream: Server, tmp_path: Path) -> None:
    # A model whose output limit is unknown: [ledger] default_max_tokens is reserved and
    # sent as max_tokens, so the reservation bounds the bill.
    config = echo_config(upstream.v1, ledger={"url": sqlite_url(tmp_path),
                                              "default_max_tokens": 64},
                         teams={"capped": {"tokens": 100_000, "window": "1d"}})
    with run_proxy(config, folder=tmp_path) as proxy:
        body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}],
                "tokenomy": {"team": "capped"}}
        assert httpx.post(proxy.v1 + "/chat/completions", json=body).status_code == 200
        assert httpx.get(upstream.url + "/_last").json()["max_tokens"] == 64
        body["tokenomy"] = {"team": "unbudgeted"}  # no budget: the body goes as it came
        assert httpx.post(proxy.v1 + "/chat/completions", json=body).status_code == 200
        assert "max_tokens" not in httpx.get(upstream.url + "/_last").json()


def test_media_rules_without_a_proxy() -> None:
    assert image_size(png(640, 480)) == (640, 480)
    assert image_size(jpeg(300, 200)) == (300, 200)
    assert image_size("bm90IGFuIGltYWdl") is None  # "not an image": the worst case
    unknown = Media("image", url="https://example.com/x.png")
    assert media_tokens([unknown], "gpt-4o") == 1445
    assert media_tokens([unknown], "claude-sonnet-4-5") == 1600
    assert media_tokens([unknown], "some-local-model") == 1600  # the larger of both rules
    assert media_tokens([Media("audio", data=wav(3), format="wav")], "gemini-2.0-flash") == 97


def test_fields_a_backend_forwards_are_held_before_they_are_sent(upstream: Server,
                                                                  tmp_path: Path) -> None:
    # A backend's `forward_fields` reach it as the client sent them, and a provider may
    # bill what they hold; the transcript does not count them, so the hold adds them
    # before the call leaves: 6,000 tokens of them do not fit a 2,000-token budget.
    config = echo_config(upstream.v1, ledger={"url": sqlite_url(tmp_path)},
                         backends={"test": {"kind": "openai", "base_url": upstream.v1,
                                            "timeout": 5, "max_retries": 0,
                                            "forward_fields": ["future_field"]}},
                         teams={"small": {"tokens": 2_000, "window": "1d"}})
    with run_proxy(config, folder=tmp_path) as proxy:
        body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 10, "tokenomy": {"team": "small"}}
        httpx.post(upstream.url + "/_reset")
        assert httpx.post(proxy.v1 + "/chat/completions", json=body).status_code == 200
        assert httpx.get(upstream.url + "/_last").json()["model"] == "echo-model"
        large = {**body, "future_field": " ".join(f"word{k}" for k in range(3_000))}
        refused = httpx.post(proxy.v1 + "/chat/completions", json=large)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["requested_tokens"] > 2_000
        assert "future_field" not in httpx.get(upstream.url + "/_last").json()  # never sent
        small = {**body, "future_field": "a short value"}
        assert httpx.post(proxy.v1 + "/chat/completions", json=small).status_code == 200
        assert httpx.get(upstream.url + "/_last").json()["future_field"] == "a short value"

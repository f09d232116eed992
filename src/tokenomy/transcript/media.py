"""Images, audio and files in prompt tokens, by each provider's documented rules.

Protocol-neutral: each wire protocol's adapter lists its media as `Media`
(an OpenAI `image_url` or `input_audio` part, an Anthropic `image` block, a
Responses `input_image`, ...) and `media_tokens(items, model)` prices them for
the model that will read them. The budget reserves these tokens; a text
tokenizer never sees them (a 3 MB base64 image is not 1M tokens of text, and
not 0 either).

The rules (checked against the providers' vision and audio guides):

- OpenAI tile models (gpt-4o, gpt-4.1, gpt-4.5, o1, o3, gpt-5, ...):
  `detail: low` costs the base; otherwise the image is scaled to fit
  2048x2048, then its short side to 768, and each 512 px tile costs the
  model's tile price on top of the base (gpt-4o: 85 + 170 per tile;
  gpt-4o-mini: 2833 + 5667; o1/o3: 75 + 150; gpt-5: 70 + 140).
- OpenAI patch models (gpt-4.1-mini/nano, o4-mini, gpt-5-mini/nano): one
  token per 32x32 patch, at most 1536 patches (larger images are scaled
  down), times the model's multiplier (1.62, 2.46, 1.72).
- Anthropic: width * height / 750 after scaling the long edge to 1568 px,
  and never more than ~1600 tokens (larger images are scaled down first).
- Any other model: the larger of the OpenAI (gpt-4o) and Anthropic figures.

An image whose size cannot be read (a URL, an unknown format) costs the
model's worst case: the estimate must bound the bill, not guess it.
Audio: OpenAI bills ~1 token per 100 ms of input audio; other models are
priced at Gemini's 32 tokens per second (the larger). A file (PDF) costs
per page what an image does plus room for its text.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from typing import NamedTuple

from tokenomy.tokenizers.encoders import bare_model_name


class Media(NamedTuple):
    """One non-text input of a prompt, as a protocol adapter found it."""

    kind: str  # "image" | "audio" | "file"
    data: str | None = None  # the base64 payload, when inline (no "data:...;base64," prefix)
    url: str | None = None  # a remote image (its size is unknown here)
    detail: str = "auto"  # OpenAI's image detail: low | high | auto
    format: str | None = None  # audio format (wav, mp3, ...) or media type


# -- reading inline data ------------------------------------------------------------

_DATA_URL = re.compile(r"^data:([\w.+/-]*)(?:;[\w=.+-]+)*;base64,", re.IGNORECASE)
_PREFIX_CHARS = 131_072  # decode at most this much base64 to read a header (96 KiB)


def split_data_url(url: str) -> tuple[str, str] | None:
    """("image/png", base64 payload) for a `data:` URL, else None."""
    found = _DATA_URL.match(url[:256])
    if found is None:
        return None
    return found.group(1).lower(), url[found.end():]


def decoded_size(data: str) -> int:
    """Bytes the base64 payload decodes to (without decoding it)."""
    length = len(data.rstrip())
    return max(0, length * 3 // 4 - data.rstrip()[-2:].count("="))


def _head(data: str, chars: int = _PREFIX_CHARS) -> bytes:
    cut = data[: min(len(data), chars)]
    cut = cut[: len(cut) - len(cut) % 4]
    try:
        return base64.b64decode(cut, validate=False)
    except (binascii.Error, ValueError):
        return b""


def image_size(data: str) -> tuple[int, int] | None:
    """(width, height) from a base64 PNG, GIF, WebP or JPEG header, else None."""
    head = _head(data)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return _sane(width, height)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return _sane(width, height)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_size(head)
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(head)
    return None


def _sane(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if 0 < width <= 1_000_000 and 0 < height <= 1_000_000 else None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return _sane(width, height)
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return _sane(width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return _sane((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    return None


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """Walk the JPEG segments to the frame header (SOFn), which holds the size."""
    at = 2
    while at + 9 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        length = int.from_bytes(head[at + 2:at + 4], "big")
        if marker in _SOF:
            height, width = struct.unpack(">HH", head[at + 5:at + 9])
            return _sane(width, height)
        at += 2 + length
    return None


def audio_seconds(data: str, fmt: str | None) -> float:
    """The duration of base64 audio: from a WAV header or an MP3 frame's bitrate, else
    from its size at 8 kbit/s (an upper bound for speech codecs)."""
    size = decoded_size(data)
    head = _head(data, 4096)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE" and len(head) >= 32:
        byte_rate = struct.unpack("<I", head[28:32])[0]
        if byte_rate > 0:
            return size / byte_rate
    bitrate = _mp3_bitrate(head)
    if bitrate:
        return size * 8 / bitrate
    return size / 1000.0


_MP3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


def _mp3_bitrate(head: bytes) -> int | None:
    at = 0
    if head[:3] == b"ID3" and len(head) >= 10:  # skip the ID3v2 tag (synchsafe size)
        size = head[6:10]
        at = 10 + ((size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3])
    if at + 4 > len(head) or head[at] != 0xFF or head[at + 1] & 0xE0 != 0xE0:
        return None
    if (head[at + 1] >> 3) & 0x3 != 0x3 or (head[at + 1] >> 1) & 0x3 != 0x1:
        return None  # MPEG-1 Layer III only; anything else takes the size rule
    index = head[at + 2] >> 4
    return _MP3_KBPS[index] * 1000 if 0 < index < 15 else None


# -- provider rules -----------------------------------------------------------------

# (base, per tile) of OpenAI's tile models, longest prefix first.
_TILES = (
    ("gpt-4o-mini", (2833, 5667)),
    ("computer-use", (65, 129)),
    ("gpt-5", (70, 140)),
    ("o1", (75, 150)),
    ("o3", (75, 150)),
)
_TILE_DEFAULT = (85, 170)  # gpt-4o, gpt-4.1, gpt-4.5, gpt-4-turbo
# Patch models: multiplier per 32x32 patch.
_PATCHES = (
    ("gpt-4.1-mini", 1.62),
    ("gpt-4.1-nano", 2.46),
    ("gpt-5-mini", 1.62),
    ("gpt-5-nano", 2.46),
    ("o4-mini", 1.72),
)
_MAX_PATCHES = 1536
_ANTHROPIC_LONG_EDGE = 1568
_ANTHROPIC_MAX = 1600
_OPENAI_AUDIO_PER_SECOND = 10  # 1 token per 100 ms of input audio
_OTHER_AUDIO_PER_SECOND = 32  # Gemini's documented rate, the larger one
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_PDF_TEXT_PER_PAGE = 1000  # room for a page's extracted text


def _provider(model: str) -> str:
    name = bare_model_name(model)
    if name.startswith("claude") or "anthropic" in model.lower():
        return "anthropic"
    if re.match(r"^(gpt-|o\d|chatgpt|computer-use)", name):
        return "openai"
    return "other"


def _prefixed(name: str, table: tuple[tuple[str, object], ...]) -> object | None:
    for prefix, value in table:
        if name.startswith(prefix):
            return value
    return None


def openai_image_tokens(size: tuple[int, int] | None, detail: str, model: str) -> int:
    """OpenAI's rule for one image (None: the size is unknown, the model's worst case)."""
    name = bare_model_name(model)
    multiplier = _prefixed(name, _PATCHES)
    if isinstance(multiplier, float):
        if size is None:
            patches = _MAX_PATCHES
        else:
            width, height = size
            patches = math.ceil(width / 32) * math.ceil(height / 32)
            if patches > _MAX_PATCHES:  # scaled down to fit, as OpenAI does
                scale = math.sqrt(_MAX_PATCHES * 32 * 32 / (width * height))
                patches = min(_MAX_PATCHES, math.ceil(width * scale / 32)
                              * math.ceil(height * scale / 32))
        return math.ceil(patches * multiplier)
    found = _prefixed(name, _TILES)
    base, tile = found if isinstance(found, tuple) else _TILE_DEFAULT
    if detail == "low":
        return int(base)
    if size is None:
        return int(base + tile * 8)  # 2048x768 after scaling: 4 x 2 tiles, the most
    w, h = float(size[0]), float(size[1])
    if max(w, h) > 2048:  # fit in 2048 x 2048
        w, h = w * 2048 / max(w, h), h * 2048 / max(w, h)
    if min(w, h) > 768:  # then the short side to 768
        w, h = w * 768 / min(w, h), h * 768 / min(w, h)
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return int(base + tile * tiles)


def anthropic_image_tokens(size: tuple[int, int] | None) -> int:
    if size is None:
        return _ANTHROPIC_MAX
    width, height = (float(v) for v in size)
    if max(width, height) > _ANTHROPIC_LONG_EDGE:
        scale = _ANTHROPIC_LONG_EDGE / max(width, height)
        width, height = width * scale, height * scale
    return min(_ANTHROPIC_MAX, math.ceil(width * height / 750))


def image_tokens(size: tuple[int, int] | None, detail: str, model: str) -> int:
    provider = _provider(model)
    if provider == "openai":
        return openai_image_tokens(size, detail, model)
    if provider == "anthropic":
        return anthropic_image_tokens(size)
    return max(openai_image_tokens(size, "high", "gpt-4o"), anthropic_image_tokens(size))


def audio_tokens(seconds: float, model: str) -> int:
    rate = _OPENAI_AUDIO_PER_SECOND if _provider(model) == "openai" else _OTHER_AUDIO_PER_SECOND
    return math.ceil(seconds * rate)


def _file_tokens(item: Media, model: str) -> int:
    if not item.data:
        return image_tokens(None, "high", model) + _PDF_TEXT_PER_PAGE  # a file id: one page
    size = decoded_size(item.data)
    raw = base64.b64decode(item.data[: len(item.data) - len(item.data) % 4], validate=False) \
        if size <= 64 * 1024 * 1024 else b""
    pages = len(_PDF_PAGE.findall(raw)) if raw.startswith(b"%PDF") else 0
    if pages:
        return pages * (image_tokens(None, "high", model) + _PDF_TEXT_PER_PAGE)
    return size // 3 + 1  # any other file: its bytes as dense text


def media_tokens(items: list[Media], model: str) -> int:
    """Prompt tokens `model`'s provider bills for these images, audio clips and files."""
    total = 0
    for item in items:
        if item.kind == "image":
            size = image_size(item.data) if item.data else None
            total += image_tokens(size, item.detail, model)
        elif item.kind == "audio":
            total += audio_tokens(audio_seconds(item.data or "", item.format), model)
        else:
            total += _file_tokens(item, model)
    return total

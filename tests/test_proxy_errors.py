"""Every bad input and every upstream failure gets an OpenAI-shaped error with the right status."""

from __future__ import annotations

import httpx
import openai
import pytest

from tokenomy.testing.processes import Server, echo_config, free_port, run_proxy

USER = [{"role": "user", "content": "hi"}]


def _post(proxy: Server, body: object = None, content: bytes | None = None,
          timeout: float = 30) -> httpx.Response:
    if content is None:
        return httpx.post(proxy.v1 + "/chat/completions", json=body, timeout=timeout)
    return httpx.post(proxy.v1 + "/chat/completions", content=content, timeout=timeout,
                      headers={"content-type": "application/json"})


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert response.headers["x-tokenomy-request-id"].startswith("tk-")
    return error


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b"null"])
def test_malformed_json_is_400(echo_proxy: Server, content: bytes) -> None:
    _error(_post(echo_proxy, content=content), 400)


@pytest.mark.parametrize("body, param", [
    ({"model": "echo"}, "messages"),
    ({"model": "echo", "messages": []}, "messages"),
    ({"model": "echo", "messages": "hi"}, "messages"),
    ({"messages": USER}, "model"),
    ({"model": 42, "messages": USER}, "model"),
    ({"model": "echo", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"model": "echo", "messages": [{"role": "user", "content": 7}]}, "messages[0].content"),
    ({"model": "echo", "messages": USER, "max_tokens": "many"}, "max_tokens"),
    ({"model": "echo", "messages": USER, "temperature": 9}, "temperature"),
    ({"model": "echo", "messages": USER, "stream": "yes"}, "stream"),
    ({"model": "echo", "messages": USER, "tokenomy": {"compress": {"target_ratio": 0.5}}},
     "tokenomy.compress.target_ratio"),
    ({"model": "echo", "messages": USER, "tokenomy": {"bogus": 1}}, "tokenomy.bogus"),
])
def test_wrong_shapes_are_400(echo_proxy: Server, body: dict, param: str) -> None:
    error = _error(_post(echo_proxy, body), 400)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


def test_unknown_model_is_404(tmp_path, upstream: Server) -> None:
    config = echo_config(upstream.v1)
    config.pop("default_backend")
    with run_proxy(config, folder=tmp_path) as proxy:
        error = _error(_post(proxy, {"model": "gpt-nope", "messages": USER}), 404)
        assert "gpt-nope" in error["message"] and "echo" in error["message"]
        assert error["code"] == "model_not_found"


def test_oversized_body_is_413(echo_proxy: Server) -> None:
    big = "x" * 70_000
    _error(_post(echo_proxy, {"model": "echo", "messages": [{"role": "user", "content": big}]}),
           413)
    too_many = [{"role": "user", "content": "x"}] * 65
    error = _error(_post(echo_proxy, {"model": "echo", "messages": too_many}), 413)
    assert error["code"] == "too_many_messages"


def test_upstream_5xx_is_502(echo_proxy: Server) -> None:
    error = _error(_post(echo_proxy, {"model": "fault:500", "messages": USER}), 502)
    assert "500" in error["message"]


def test_upstream_timeout_is_504(tmp_path, upstream: Server) -> None:
    config = echo_config(upstream.v1)
    config["backends"]["hasty"] = {"kind": "openai", "base_url": upstream.v1, "timeout": 1,
                                   "max_retries": 0}
    config["models"]["hang"] = {"backend": "hasty", "model": "fault:timeout"}
    with run_proxy(config, folder=tmp_path) as proxy:
        error = _error(_post(proxy, {"model": "hang", "messages": USER}), 504)
        assert error["code"] == "upstream_timeout"
        # and it keeps serving
        assert _post(proxy, {"model": "echo", "messages": USER}).status_code == 200


def test_upstream_unreachable_is_502(tmp_path) -> None:
    config = echo_config(f"http://127.0.0.1:{free_port()}/v1")
    config["backends"]["test"]["max_retries"] = 1
    with run_proxy(config, folder=tmp_path) as proxy:
        error = _error(_post(proxy, {"model": "echo", "messages": USER}), 502)
        assert "unreachable" in error["message"]


def test_upstream_malformed_json_is_502(echo_proxy: Server) -> None:
    error = _error(_post(echo_proxy, {"model": "fault:malformed", "messages": USER}), 502)
    assert "malformed" in error["message"]


def test_upstream_429_is_retried_then_passed_on(echo_proxy: Server, upstream_reset) -> None:
    error = _error(_post(echo_proxy, {"model": "fault:429", "messages": USER}), 429)
    assert error["code"] == "upstream_rate_limited"
    stats = httpx.get(upstream_reset.url + "/_stats").json()
    assert stats["by_model"]["fault:429"] == 3  # one try plus max_retries=2


def test_flaky_upstream_recovers_with_retries(echo_proxy: Server, upstream_reset) -> None:
    response = _post(echo_proxy, {"model": "fault:flaky2", "messages": USER})
    assert response.status_code == 200


def test_stream_cut_midway_ends_with_error_event(echo_proxy: Server) -> None:
    client = openai.OpenAI(base_url=echo_proxy.v1, api_key="unused", max_retries=0)
    stream = client.chat.completions.create(model="fault:cut", messages=USER, stream=True)
    with pytest.raises(openai.APIError) as info:
        for _ in stream:
            pass
    assert "backend" in str(info.value)
    # the server keeps serving
    assert _post(echo_proxy, {"model": "echo", "messages": USER}).status_code == 200


def test_stream_refused_upfront_gets_status(echo_proxy: Server) -> None:
    body = {"model": "fault:503", "messages": USER, "stream": True}
    _error(_post(echo_proxy, body), 502)


def test_unknown_route_is_openai_shaped(echo_proxy: Server) -> None:
    _error(httpx.get(echo_proxy.url + "/v1/nothing"), 404)


def test_fallback_to_second_backend(tmp_path, upstream: Server) -> None:
    config = echo_config(upstream.v1)
    config["models"]["primary"] = {"backend": "test", "model": "fault:503",
                                   "fallbacks": ["echo"]}
    config["backends"]["test"]["max_retries"] = 0
    with run_proxy(config, folder=tmp_path) as proxy:
        response = _post(proxy, {"model": "primary", "messages": USER})
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "echo: hi"

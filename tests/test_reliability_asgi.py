"""The chat endpoint behind FastAPI's routing too (the app mounted under a prefix), in process."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from tokenomy.config import Settings
from tokenomy.server.app import create_app


def _settings() -> Settings:
    return Settings.model_validate({
        "backends": {"x": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}},
        "default_backend": "x", "ledger": {"enabled": False},
    })


def test_mounted_app_routes_chat_through_fastapi() -> None:
    outer = Starlette(routes=[Mount("/proxy", app=create_app(_settings()))])
    with TestClient(outer) as client:
        response = client.post("/proxy/v1/chat/completions", content=b"{nope")
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith("the request body is not valid JSON")
        assert response.headers["x-tokenomy-request-id"].startswith("tk-")


def test_fast_path_and_other_routes_in_process() -> None:
    with TestClient(create_app(_settings())) as client:
        response = client.post("/v1/chat/completions", json={"model": "m", "messages": []})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "messages"
        assert client.get("/v1/chat/completions").status_code == 405  # FastAPI's answer
        assert "/v1/chat/completions" in client.get("/openapi.json").json()["paths"]

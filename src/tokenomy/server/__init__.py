"""The HTTP adapters: one module per route family; `create_app` builds the ASGI app."""

from tokenomy.server.app import create_app

__all__ = ["create_app"]

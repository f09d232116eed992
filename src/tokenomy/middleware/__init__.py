"""The proxy: ASGI server, auth, upstreams, streaming."""

"""Backends behind one tiny interface (`base.Upstream`), the router, retries, one SSE codec."""

from tokenomy.upstreams.base import Upstream

__all__ = ["Upstream"]

"""Backends behind one tiny interface (like httpx's transports): see `base.Upstream`."""

from tokenomy.upstreams.base import Upstream, build_upstream

__all__ = ["Upstream", "build_upstream"]

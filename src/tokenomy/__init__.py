"""tokenomy: token-economy middleware for LLM applications."""

from tokenomy.assets import configure_offline

configure_offline()

__version__ = "0.1.0"

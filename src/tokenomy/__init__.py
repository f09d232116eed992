"""tokenomy."""

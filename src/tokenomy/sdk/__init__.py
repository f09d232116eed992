"""tokenomy.sdk."""

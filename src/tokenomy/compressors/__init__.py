"""tokenomy.compressors."""

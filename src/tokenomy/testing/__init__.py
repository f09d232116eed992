"""Test helpers that ship with the package: a deterministic OpenAI-compatible upstream."""

"""The exact response cache: identical requests answered without an upstream call."""

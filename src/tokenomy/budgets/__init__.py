"""tokenomy.budgets."""

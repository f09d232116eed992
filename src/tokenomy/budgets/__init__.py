"""tokenomy.budgets: the per-team ledger, budgets, virtual keys and reports.

- `service.Budgets`: one per process; owns the ledger, keys and prices and
  builds the identify and budget stages (see `engine.build_stages`).
- `ledger.Ledger`: atomic reservations, settlement, reconciliation.
- `report.aggregate`: the one aggregation behind `tokenomy report`, the usage
  API and the dashboard (`http.usage_router`).
"""

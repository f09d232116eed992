"""tokenomy.planners."""

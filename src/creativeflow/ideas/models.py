"""Content idea tables (filled in with the ideas module)."""

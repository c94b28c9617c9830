"""Database plumbing: engine, sessions, base classes and column types."""

"""Identity: users, roles and permissions, sessions and tokens, API keys."""

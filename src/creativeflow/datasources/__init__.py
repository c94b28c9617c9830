"""The data-source registry: typed configs for 18 source types, connection tests, discovery,
preview, shared credentials and encrypted secrets."""

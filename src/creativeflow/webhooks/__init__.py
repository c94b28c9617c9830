"""The outbox (durable domain events dispatched after commit) and signed webhook deliveries."""

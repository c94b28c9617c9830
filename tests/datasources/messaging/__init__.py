"""Tests of the messaging data-source family (Kafka, RabbitMQ, MQTT, NATS)."""

"""Message brokers and streams: Kafka, RabbitMQ, MQTT and NATS. None of them is read in a way
that takes, acknowledges or commits a message."""

from __future__ import annotations

from creativeflow.datasources.base import SourceType
from creativeflow.datasources.messaging import kafka, mqtt, nats, rabbitmq

SOURCE_TYPES: tuple[SourceType, ...] = (
    kafka.SOURCE_TYPE,
    rabbitmq.SOURCE_TYPE,
    mqtt.SOURCE_TYPE,
    nats.SOURCE_TYPE,
)

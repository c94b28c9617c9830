"""A real S3 endpoint for tests: moto's S3 server on 127.0.0.1, one per test session.

Use it as a plugin (`pytest_plugins = ["tests.assets.s3_server"]`): `s3_server` is the running
server, `s3_bucket` a fresh empty bucket per test. The code under test talks to it over HTTP
like to any S3-compatible store; boto3 (installed with moto) is used here only to arrange and
inspect buckets, never by the platform.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer


@dataclass(frozen=True, slots=True)
class S3Server:
    endpoint_url: str
    region: str = "us-east-1"
    # moto accepts any credentials; explicit ones keep the developer's AWS_* settings out.
    access_key_id: str = "test-access-key"
    secret_access_key: str = "test-secret-key"

    def client(self) -> Any:
        """A boto3 S3 client for arranging and checking buckets from the test side."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    # Port 0: the OS picks a free port when the server binds, so no other process can take it
    # between choosing and binding.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A new empty bucket, removed with what the test left in it."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)

"""A real S3-compatible server on loopback (moto's, in this process) and buckets for tests.

In-process rather than a subprocess so that a test can stop it and start it again on the same
port with every object still there (an outage, not a data loss)."""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

ACCESS = {"AWS_ACCESS_KEY_ID": "test-access", "AWS_SECRET_ACCESS_KEY": "test-secret"}


@dataclass
class S3Server:
    """moto's S3 on ``127.0.0.1:<port>``; :meth:`stop` and :meth:`start` keep its objects."""

    port: int = 0
    _server: Any = field(default=None, repr=False)
    """moto's ThreadedMotoServer, imported only when a test needs it (moto and boto3 take
    seconds to import, which every other test session would pay)."""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        deadline = time.monotonic() + 10
        while True:
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            try:
                server.start()
                break
            except OSError:  # the port is still held by the stopped server's last connections
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._server = server
        self.port = server.get_host_and_port()[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        with socket.socket() as probe:  # wait until the port refuses connections
            deadline = time.monotonic() + 5
            while probe.connect_ex(("127.0.0.1", self.port)) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)

    def env(self) -> dict[str, str]:
        """The standard AWS variables a gateway reads to reach this server."""
        return {**ACCESS, "AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": "us-east-1"}

    def create_bucket(self) -> str:
        name = "imagegate-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=ACCESS["AWS_SECRET_ACCESS_KEY"],
        )

    def keys(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the shared server, with the AWS variables pointing at it."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    return s3_server.create_bucket()

"""A local S3-compatible server for tests: moto in server mode on a free loopback port (no network).

Why a real server and not moto's in-process mock: the blob store must be tested over HTTP as it runs against MinIO
or AWS (checksums, error codes, connection failures), with boto3 built exactly as production builds it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

__all__ = ["S3Server", "free_port", "local_s3_server"]

logger = logging.getLogger(__name__)

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "vitalens-test",
    "AWS_SECRET_ACCESS_KEY": "vitalens-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self):  # noqa: ANN201 - a boto3 client
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def local_s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 with test credentials in the environment; skips when moto is missing."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        pytest.skip("moto[server] is not installed (pip install 'vitalens[dev]')")
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

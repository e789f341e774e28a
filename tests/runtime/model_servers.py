"""Real remote model sources on loopback for tests: an S3-compatible server (moto's
ThreadedMotoServer, a real HTTP server speaking the S3 API) and a plain http.server.

    with s3_server() as s3:             # sets AWS_ENDPOINT_URL and test credentials meanwhile
        s3.upload_tree(folder, "models/iris")   # -> s3://<s3.bucket>/models/iris/...
        s3.url("models/iris")                   # "s3://cortex-test/models/iris"
        s3.env                                  # the variables a server subprocess needs

    with http_server(folder) as base:   # base = "http://127.0.0.1:<port>"
        ...
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servers import free_port

BUCKET = "cortex-test"


@dataclass
class S3:
    endpoint: str
    client: Any
    bucket: str = BUCKET

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)

    def upload_tree(self, folder: Path, prefix: str) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                self.put(f"{prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes())

    def delete_prefix(self, prefix: str) -> None:
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix + "/")
        for item in listed.get("Contents") or ():
            self.client.delete_object(Bucket=self.bucket, Key=item["Key"])


@contextlib.contextmanager
def s3_server() -> Iterator[S3]:
    """moto's S3 server on a free loopback port, with bucket BUCKET; the AWS_* variables of
    `S3.env` are set in this process for the duration (boto3 reads them)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {}
    s3 = S3(endpoint, None)
    try:
        for key, value in s3.env.items():
            saved[key] = os.environ.get(key)
            os.environ[key] = value
        s3.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.client.create_bucket(Bucket=BUCKET)
        yield s3
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def http_server(folder: Path) -> Iterator[str]:
    """`folder` served over HTTP on a free loopback port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

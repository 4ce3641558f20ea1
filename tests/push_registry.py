"""A registry on 127.0.0.1 that accepts `docker push` and keeps nothing: for tests only.

Pushing an image is what gives it a RepoDigest on the engine, and ZenML's
image builder pulls a parent image that has one before building (unless the
image is "local", i.e. has no RepoDigest). The tests need such an image with
no network and no registry image on the engine, so this answers the part of
Docker's registry HTTP API that a push uses (distribution spec, "push"):
every blob already exists (HEAD 200), so no layer is uploaded, and a
manifest PUT is accepted with its digest. Docker trusts registries on
127.0.0.0/8 without TLS by default.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from typing import Optional


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def _answer(self, status: int, headers: Optional[dict] = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": "0",
                            "Docker-Distribution-API-Version": "registry/2.0",
                            **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._answer(200 if self.path.rstrip("/") == "/v2" else 404)

    def do_HEAD(self) -> None:
        if "/blobs/" in self.path:  # "we have that layer already": nothing is uploaded
            digest = self.path.rsplit("/", 1)[-1]
            self._answer(200, {"Docker-Content-Digest": digest, "Content-Length": "1"})
        else:
            self._answer(404)

    def do_POST(self) -> None:
        self._read_body()
        name = self.path.split("/blobs/uploads")[0]
        self._answer(202, {"Location": f"{name}/blobs/uploads/upload", "Range": "0-0"})

    def do_PATCH(self) -> None:
        self._read_body()
        self._answer(202, {"Location": self.path.split("?")[0], "Range": "0-0"})

    def do_PUT(self) -> None:
        body = self._read_body()
        if "/manifests/" in self.path:
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            self._answer(201, {"Docker-Content-Digest": digest, "Location": self.path})
        else:
            self._answer(201, {"Location": self.path.split("?")[0]})


class PushRegistry:
    """`with PushRegistry() as registry:` push to `f"{registry.address}/name:tag"`."""

    def __init__(self) -> None:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "PushRegistry":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

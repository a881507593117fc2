"""A stand-in for Zenodo on loopback: a record's metadata and its files, with HTTP range requests.

``GET /api/records/<id>`` answers as Zenodo's REST API does: ``{"id", "files": [{"key", "size",
"checksum": "md5:<hex>", "links": {"self": <url>}}]}``; ``GET <url>`` serves a file, honouring
``Range: bytes=<start>-`` with 206. Faults for tests: ``cut_after[name] = n`` sends the first
``n`` bytes then drops the connection (once); ``wrong_md5`` publishes a wrong checksum;
``ignore_range`` answers a range request with the whole file (200); ``wrong_offset`` answers it
with a 206 starting 7 bytes early. Every request is logged with its ``Range`` header.

    with LocalZenodo() as zenodo:
        zenodo.publish("8412455", {"SpectralGPT+.pth": data})
        os.environ["SPECMAE_ZENODO_ENDPOINT"] = zenodo.url
"""

from __future__ import annotations

import hashlib
import json
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

from loopback import LoopbackServer


class LocalZenodo(LoopbackServer):
    def __init__(self) -> None:
        self.records: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.cut_after: dict[str, int] = {}
        self.wrong_md5: set[str] = set()
        self.ignore_range: set[str] = set()  # answer a range request with 200 and the whole file
        self.wrong_offset: set[str] = set()  # answer a range request with a 206 that starts elsewhere
        zenodo = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                zenodo._answer(self)

            def log_message(self, *args) -> None:
                pass

        super().__init__(Handler)

    def publish(self, record: str, files: dict[str, bytes]) -> None:
        self.records.setdefault(str(record), {}).update(files)

    def file_requests(self) -> list[tuple[str, str | None]]:
        return [(path, rng) for path, rng in self.requests if "/files/" in path]

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        path = unquote(request.path.split("?")[0])
        self.requests.append((path, request.headers.get("Range")))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "records"] and len(parts) == 3 and parts[2] in self.records:
            record = parts[2]
            files = [
                {
                    "key": name,
                    "size": len(data),
                    "checksum": "md5:" + ("0" * 32 if name in self.wrong_md5 else hashlib.md5(data).hexdigest()),
                    "links": {"self": f"{self.url}/api/records/{record}/files/{name}/content"},
                }
                for name, data in self.records[record].items()
            ]
            return self._send(request, 200, json.dumps({"id": int(record), "files": files}).encode(), "application/json")
        if len(parts) == 6 and parts[:2] == ["api", "records"] and parts[3] == "files" and parts[5] == "content":
            record, name = parts[2], parts[4]
            data = self.records.get(record, {}).get(name)
            if data is None:
                return self._send(request, 404, b'{"status": 404}', "application/json")
            start = 0
            if (rng := request.headers.get("Range")) and name not in self.ignore_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if name in self.wrong_offset:
                    start = max(start - 7, 1)
            body = data[start:]
            request.send_response(206 if start else 200)
            request.send_header("Content-Length", str(len(body)))
            request.send_header("Content-Type", "application/octet-stream")
            if start:
                request.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            request.end_headers()
            cut = self.cut_after.pop(name, None)
            if cut is not None:
                request.wfile.write(body[:cut])
                request.wfile.flush()
                request.close_connection = True
                request.connection.shutdown(2)  # the connection drops mid-file
                return None
            request.wfile.write(body)
            return None
        return self._send(request, 404, b'{"status": 404}', "application/json")

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: bytes, kind: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

"""A stand-in for the Hugging Face Hub on loopback, for the real ``huggingface_hub`` download path.

It answers ``HEAD``/``GET {endpoint}/{org}/{repo}/resolve/{revision}/{file}`` as the Hub does for
regular (non-LFS, non-Xet) files: ``X-Repo-Commit``, ``ETag`` and ``Content-Length`` headers, and
``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) on 404s, which
``huggingface_hub`` turns into its own exceptions. Every request is logged, so tests can see
whether a load hit the network or the cache.

    with LocalHub() as hub:
        hub.publish("org/model", folder)            # a commit on "main"
        os.environ["HF_ENDPOINT"] = hub.url        # (before huggingface_hub is imported)
"""

from __future__ import annotations

import hashlib
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote

from loopback import LoopbackServer


class LocalHub(LoopbackServer):
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}  # repo → commit → file → bytes
        self.refs: dict[str, dict[str, str]] = {}  # repo → branch/tag → commit
        self.requests: list[tuple[str, str]] = []
        self.corrupt: set[str] = set()  # "repo/file" whose bytes are altered in transit (ETag and length kept)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
                hub._answer(self, body=False)

            def do_GET(self) -> None:  # noqa: N802
                hub._answer(self, body=True)

            def log_message(self, *args) -> None:  # quiet
                pass

        super().__init__(Handler)

    def publish(self, repo_id: str, files: Path | dict[str, bytes], revision: str = "main", commit: str | None = None) -> str:
        """Commit ``files`` (a folder or name → bytes) to ``repo_id`` and point ``revision`` at it; returns the commit
        (``commit``: its 40-hex id, as a pinned revision names it; default a hash of the files)."""
        if isinstance(files, Path):
            files = {p.relative_to(files).as_posix(): p.read_bytes() for p in sorted(files.rglob("*")) if p.is_file()}
        commit = commit or hashlib.sha1(repr(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in files.items())).encode()).hexdigest()
        self.repos.setdefault(repo_id, {})[commit] = dict(files)
        self.refs.setdefault(repo_id, {})[revision] = commit
        return commit

    def downloads(self) -> list[str]:
        """Repo files fetched with GET (file bodies that crossed the network)."""
        return [path for method, path in self.requests if method == "GET" and "/resolve/" in path]

    def _answer(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        self.requests.append((request.command, request.path))
        parts = unquote(request.path.split("?")[0]).strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(request, 404, "RepoNotFound", "Not a resolve URL.")
        repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        if repo_id not in self.repos:
            return self._error(request, 404, "RepoNotFound", f"Repository {repo_id} not found.")
        commit = self.refs[repo_id].get(revision, revision)
        if commit not in self.repos[repo_id]:
            return self._error(request, 404, "RevisionNotFound", f"Invalid revision {revision}.")
        files = self.repos[repo_id][commit]
        if filename not in files:
            return self._error(request, 404, "EntryNotFound", f"{filename} does not exist.", commit)
        data = files[filename]
        request.send_response(200)
        request.send_header("X-Repo-Commit", commit)
        request.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        request.send_header("Content-Length", str(len(data)))
        request.send_header("Content-Type", "application/octet-stream")
        request.end_headers()
        if body:
            if f"{repo_id}/{filename}" in self.corrupt:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            request.wfile.write(data)

    @staticmethod
    def _error(request, status: int, code: str, message: str, commit: str | None = None) -> None:
        request.send_response(status)
        request.send_header("X-Error-Code", code)
        request.send_header("X-Error-Message", message)
        if commit:
            request.send_header("X-Repo-Commit", commit)
        request.send_header("Content-Length", "0")
        request.end_headers()

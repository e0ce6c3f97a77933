"""A local stand-in for the Hugging Face hub: just what ``snapshot_download`` of huggingface_hub 2.4 calls.

Endpoints (dataset repos only, any revision name resolves to the repo's one commit):

``GET /api/datasets/{owner}/{name}/revision/{rev}``
    repo info: ``id``, ``sha`` (the commit), ``siblings``.
``GET /api/datasets/{owner}/{name}/tree/{rev}[/{path}]``
    the recursive file listing: ``type``, ``path``, ``size``, ``oid`` (one page, no ``Link`` header).
``POST /api/datasets/{owner}/{name}/paths-info/{rev}``
    metadata of the named paths (not used by ``snapshot_download`` today; served for completeness).
``HEAD|GET /datasets/{owner}/{name}/resolve/{rev}/{path}``
    the file, with ``ETag``, ``X-Repo-Commit``, ``Content-Length`` and ``Accept-Ranges``; ``Range`` is honoured.

Errors follow the hub: an unknown repo is ``404`` with ``X-Error-Code: RepoNotFound``, a private repo
without the right bearer token is ``401`` (which huggingface_hub also reports as "repository not found"),
a missing file is ``404`` with ``X-Error-Code: EntryNotFound``. Every request is recorded in
:attr:`FakeHub.requests` (method, path, headers) so tests can look at what the client sent.
"""
from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

__all__ = ["FakeHub", "Repo", "Recorded", "closed_port", "SilentServer"]

_API = re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/(?P<what>revision|tree|paths-info)/(?P<rev>[^/]+)(?P<rest>/.*)?$")
_RESOLVE = re.compile(r"^/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass
class Repo:
    """One dataset repo: its files (repo path -> bytes) and, for a private repo, the token it wants."""

    files: dict[str, bytes]
    token: str | None = None

    @property
    def sha(self) -> str:
        h = hashlib.sha1()
        for path in sorted(self.files):
            h.update(path.encode() + b"\0" + self.files[path])
        return h.hexdigest()


def _blob_oid(data: bytes) -> str:
    """The git blob id of a file's bytes (what the hub reports as ``oid`` and the ETag of a non-LFS file)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FakeHub:
    """A running fake hub on ``127.0.0.1``; ``endpoint`` is what ``HF_ENDPOINT`` should be set to."""

    repos: dict[str, Repo]
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fakehub", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, item: Recorded) -> None:
        with self._lock:
            self.requests.append(item)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    # -- dispatch ----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch(body=True)

    def do_HEAD(self) -> None:
        self._dispatch(body=False)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._payload = self.rfile.read(length) if length else b""
        self._dispatch(body=True)

    def _dispatch(self, *, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.fake.record(Recorded(self.command, path, {k.lower(): v for k, v in self.headers.items()}))
        if m := _API.match(path):
            repo = self._repo(m["repo"], body=body)
            if repo is None:
                return
            if m["what"] == "revision" and self.command == "GET":
                return self._json({"id": m["repo"], "sha": repo.sha, "private": repo.token is not None,
                                   "siblings": [{"rfilename": p} for p in sorted(repo.files)]}, body=body)
            if m["what"] == "tree" and self.command == "GET":
                prefix = (m["rest"] or "").strip("/")
                return self._json([_entry(p, d) for p, d in sorted(repo.files.items())
                                   if not prefix or p.startswith(prefix + "/")], body=body)
            if m["what"] == "paths-info" and self.command == "POST":
                wanted = _form_paths(getattr(self, "_payload", b""))
                return self._json([_entry(p, repo.files[p]) for p in wanted if p in repo.files], body=body)
        elif m := _RESOLVE.match(path):
            repo = self._repo(m["repo"], body=body)
            if repo is None:
                return
            data = repo.files.get(m["path"])
            if data is None or self.command not in ("GET", "HEAD"):
                return self._error(404, "EntryNotFound", "Entry not found", body=body, commit=repo.sha)
            return self._file(data, repo.sha, body=body)
        self._error(404, None, "Not found", body=body)

    # -- pieces ------------------------------------------------------------------------------------
    def _repo(self, name: str, *, body: bool) -> Repo | None:
        repo = self.fake.repos.get(name)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", body=body)
            return None
        if repo.token is not None and self.headers.get("Authorization") != f"Bearer {repo.token}":
            self._error(401, "RepoNotFound", "Invalid username or password.", body=body)
            return None
        return repo

    def _json(self, obj: object, *, body: bool) -> None:
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _file(self, data: bytes, commit: str, *, body: bool) -> None:
        start, status = 0, 200
        rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if rng and int(rng[1]) < len(data):
            start, status = int(rng[1]), 206
        chunk = data[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{_blob_oid(data)}"')
        self.send_header("X-Repo-Commit", commit)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if body:
            self.wfile.write(chunk)

    def _error(self, status: int, code: str | None, message: str, *, body: bool, commit: str | None = None) -> None:
        data = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.end_headers()
        if body:
            self.wfile.write(data)


def _entry(path: str, data: bytes) -> dict[str, object]:
    return {"type": "file", "path": path, "size": len(data), "oid": _blob_oid(data)}


def _form_paths(payload: bytes) -> list[str]:
    from urllib.parse import parse_qs

    text = payload.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        return list(json.loads(text).get("paths", []))
    return parse_qs(text).get("paths", [])


def closed_port() -> int:
    """A local port with nothing listening on it (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SilentServer:
    """A socket that listens (the kernel completes the handshakes) but never reads or answers."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)

    @property
    def endpoint(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._sock.close()

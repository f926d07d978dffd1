"""A Git server speaking smart HTTP (git http-backend), plus static Helm chart repositories.

Reads (clone, fetch) are anonymous, like public repositories; pushes need HTTP basic auth with
the server's token. It listens on one address chosen by the caller: for kind, the gateway of
kind's Docker network, so the host and every node and pod use the very same URLs.
"""

from __future__ import annotations

import base64
import mimetypes
import os
import secrets
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from harness.core import commands
from harness.core.errors import CommandError, HarnessError, Secret
from harness.core.waits import wait_for

GIT_BACKEND = "/usr/lib/git-core/git-http-backend"
READY_FILE = "server.url"
TOKEN_ENV = "FLEET_GIT_SERVER_TOKEN"
BACKEND_TIMEOUT_S = 300.0
USERNAME = "fleet"


class GitServerError(HarnessError):
    """The Git server could not start or a repository operation failed."""


@dataclass(frozen=True)
class GitServer:
    """A running server: its base URL, credentials and folders."""

    url: str  # e.g. http://172.18.0.1:38123
    username: str
    # Kept out of repr: pytest prints a failing test's arguments, fixtures like this included.
    token: str = field(repr=False)
    git_root: Path
    charts_root: Path

    def repo_url(self, name: str) -> str:
        return f"{self.url}/git/{name}.git"

    def charts_url(self, repo: str) -> str:
        return f"{self.url}/charts/{repo}"

    def create_repo(self, name: str) -> Path:
        """An empty bare repository whose default branch is main."""
        path = self.git_root / f"{name}.git"
        if path.exists():
            raise GitServerError(f"repository {name} already exists on the Git server")
        path.parent.mkdir(parents=True, exist_ok=True)
        commands.run(["git", "init", "--bare", "--initial-branch=main", str(path)], timeout_s=30.0)
        commands.run(["git", "-C", str(path), "config", "http.receivepack", "true"], timeout_s=30.0)
        return path

    def remove_repo(self, name: str) -> None:
        """Repository `name` gone from the server (a test's own, when the server outlives the
        session: `make up`'s, which the next run creates the repository on again)."""
        shutil.rmtree(self.git_root / f"{name}.git", ignore_errors=True)


def _handler(server_root: Path, charts_root: Path, username: str, token: str) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return  # requests are not interesting unless they fail; failures are answered loudly

        def _send(self, status: int, body: bytes, content_type: str = "text/plain", extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._dispatch()

        def do_HEAD(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            if path.startswith("/git/"):
                self._git(path.removeprefix("/git"), parts.query)
            elif path.startswith("/charts/"):
                self._static(charts_root, path.removeprefix("/charts/"))
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n")

        def _static(self, root: Path, rel: str) -> None:
            target = (root / rel).resolve()
            if not target.is_relative_to(root.resolve()) or not target.is_file():
                self._send(HTTPStatus.NOT_FOUND, f"no such chart file: {rel}\n".encode())
                return
            kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            self._send(HTTPStatus.OK, target.read_bytes(), kind)

        def _body(self) -> bytes:
            """The request body, with a length or chunked: git sends pushes larger than its
            http.postBuffer (1 MiB by default) with Transfer-Encoding: chunked."""
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailer fields, up to the blank line
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF closing the chunk

        def _git(self, path: str, query: str) -> None:
            pushing = "git-receive-pack" in path or "service=git-receive-pack" in query
            if pushing and self.headers.get("Authorization") != expected:
                self._send(HTTPStatus.UNAUTHORIZED, b"authentication required to push\n",
                           extra={"WWW-Authenticate": 'Basic realm="fleet-git"'})
                return
            body = self._body()
            env = {
                "GIT_PROJECT_ROOT": str(server_root), "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": username if pushing else "",
                "REMOTE_ADDR": self.client_address[0],
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            try:
                output = commands.run_binary([GIT_BACKEND], timeout_s=BACKEND_TIMEOUT_S, env=env, stdin=body)
            except CommandError as exc:
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc).encode())
                return
            head, _, payload = output.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = output.partition(b"\n\n")
            status, headers = HTTPStatus.OK, {}
            for line in head.decode(errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.lower() == "status":
                    status = HTTPStatus(int(value.strip().split()[0]))
                elif key:
                    headers[key.strip()] = value.strip()
            content_type = headers.pop("Content-Type", "application/octet-stream")
            self._send(status, payload, content_type, headers)

    return Handler


def _prepare_root(root: Path, chart_repos: dict[str, Path]) -> tuple[Path, Path]:
    git_root = root / "git"
    charts_root = root / "charts"
    git_root.mkdir(parents=True, exist_ok=True)
    charts_root.mkdir(parents=True, exist_ok=True)
    for name, folder in chart_repos.items():
        shutil.copytree(folder, charts_root / name, dirs_exist_ok=True)
    return git_root, charts_root


def _listen(address: str, root: Path, token: str) -> tuple[ThreadingHTTPServer, GitServer]:
    git_root, charts_root = root / "git", root / "charts"
    try:
        httpd = ThreadingHTTPServer((address, 0), _handler(git_root, charts_root, USERNAME, token))
    except OSError as exc:
        raise GitServerError(f"cannot listen on {address}: {exc}") from exc
    url = f"http://{address}:{httpd.server_address[1]}"
    return httpd, GitServer(url, USERNAME, token, git_root, charts_root)


@contextmanager
def serve(address: str, root: Path, chart_repos: dict[str, Path]) -> Iterator[GitServer]:
    """Run the server in this process on address (port chosen by the OS) until the context exits."""
    _prepare_root(root, chart_repos)
    httpd, server = _listen(address, root, secrets.token_hex(16))
    thread = threading.Thread(target=httpd.serve_forever, name="git-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def serve_detached(address: str, root: Path, chart_repos: dict[str, Path]) -> tuple[GitServer, commands.Daemon]:
    """Run the server in a process of its own that outlives this one (`make up`)."""
    _prepare_root(root, chart_repos)
    token = secrets.token_hex(16)
    ready = root / READY_FILE
    ready.unlink(missing_ok=True)
    daemon = commands.spawn([sys.executable, "-m", "harness", "git-server", "--address", address,
                             "--root", str(root)], log=root / "server.log", env={TOKEN_ENV: Secret(token)})

    def probe() -> tuple[bool, str, str]:
        if not daemon.alive():
            raise GitServerError(f"the Git server exited; see {root / 'server.log'}")
        return ready.is_file(), ready.read_text().strip() if ready.is_file() else "", "not listening yet"

    try:
        url = wait_for("the Git server to listen", probe, timeout_s=30.0, interval_s=0.2)
    except BaseException:
        daemon.stop()
        raise
    return GitServer(url, USERNAME, token, root / "git", root / "charts"), daemon


def run_server(address: str, root: Path) -> None:
    """The detached server's process: listen, say where (READY_FILE), serve until killed."""
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise GitServerError(f"{TOKEN_ENV} is not set: the push token comes from the parent process")
    httpd, server = _listen(address, root, token)
    (root / READY_FILE).write_text(server.url + "\n")
    httpd.serve_forever()

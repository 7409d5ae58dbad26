"""A small Hugging Face Hub on 127.0.0.1 for the tests, spoken to by the genuine client.

It implements the routes that ``huggingface_hub`` calls to create a repo, upload a folder in one
commit (YAML validation, preupload, the LFS batch/upload/verify exchange, the ndjson commit),
ask who a token belongs to, read repo info, commits, trees and paths-info, and download files
(``resolve`` with the ``X-Repo-Commit``, ``ETag``, ``X-Linked-Etag`` and ``X-Linked-Size``
headers, ranges included). Errors carry the ``X-Error-Code`` header the client turns into
``RepositoryNotFoundError``, ``RevisionNotFoundError`` and ``EntryNotFoundError``.

Everything lives in memory. Uploads only work over the plain LFS protocol: the client must run
with ``HF_HUB_DISABLE_XET=1``, because Xet storage is a separate content-addressed service that
this server does not imitate. Commit ids are random hex, not git hashes; blob ids of regular
files are real git blob hashes, since the client compares them with what it computes.

    with LoopbackHub(tokens={"hf_w": ("alice", "write")}) as hub:
        env = {"HF_ENDPOINT": hub.url, ...}
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

# Files the preupload answer sends through LFS, like the Hub's default .gitattributes.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".png", ".jpg", ".zip", ".npz")
LFS_MIN_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = "".join(
    f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES
).encode()


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


@dataclass
class StoredFile:
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def blob_id(self) -> str:
        # For LFS files git stores the pointer, and the blob id is the pointer's hash.
        raw = lfs_pointer(self.sha256, len(self.content)) if self.lfs else self.content
        return git_blob_sha1(raw)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id

    def tree_entry(self, path: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": "file",
            "path": path,
            "size": len(self.content),
            "oid": self.blob_id,
        }
        if self.lfs:
            pointer = lfs_pointer(self.sha256, len(self.content))
            entry["lfs"] = {
                "oid": self.sha256,
                "size": len(self.content),
                "pointerSize": len(pointer),
            }
        return entry


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    author: str
    date: str
    files: dict[str, StoredFile]


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        oid = self.branches.get(revision, revision)
        if oid in self.commits:
            return self.commits[oid]
        matches = [c for c in self.commits.values() if len(oid) >= 7 and c.oid.startswith(oid)]
        return matches[0] if len(matches) == 1 else None

    def history(self, revision: str) -> list[Commit]:
        commit, out = self.resolve(revision), []
        while commit is not None:
            out.append(commit)
            commit = self.commits.get(commit.parent) if commit.parent else None
        return out


class HubError(Exception):
    """An error reply: status, message, the client's X-Error-Code, extra headers and body keys."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **body: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers, self.body = dict(headers or {}), body


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class LoopbackHub:
    """The server and its state; start with ``with LoopbackHub(...) as hub`` or ``start()``.

    Args:
        tokens: token -> (user name, "write" or "read").
        orgs: user name -> organisations the user may write to.
    """

    def __init__(
        self,
        tokens: dict[str, tuple[str, str]] | None = None,
        orgs: dict[str, list[str]] | None = None,
    ) -> None:
        self.tokens = dict(tokens or {})
        self.orgs = dict(orgs or {})
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        # (method, path) of every request, so tests can tell what the client did.
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LoopbackHub:
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LoopbackHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("The loopback Hub is not running: call start() first.")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- direct access for tests -------------------------------------------------------------

    def seed(self, repo_id: str, files: dict[str, bytes], *, private: bool = False) -> str:
        """Create ``repo_id`` if needed and commit ``files`` to main; returns the commit id."""
        with self.lock:
            if repo_id not in self.repos:
                self._create(repo_id, private=private, author="seed")
            operations = {
                path: StoredFile(content, lfs=self._is_lfs(path, content))
                for path, content in files.items()
            }
            return self._commit(self.repos[repo_id], "main", operations, set(), "Seed", "", "seed")

    def head(self, repo_id: str, revision: str = "main") -> str:
        return self.repos[repo_id].branches[revision]

    def commit_count(self, repo_id: str, revision: str = "main") -> int:
        return len(self.repos[repo_id].history(revision))

    def count(self, method: str, fragment: str) -> int:
        return sum(1 for m, p in self.requests if m == method and fragment in p)

    # -- state changes -----------------------------------------------------------------------

    def _create(self, repo_id: str, *, private: bool, author: str) -> Repo:
        repo = Repo(repo_id, private)
        self.repos[repo_id] = repo
        initial = {".gitattributes": StoredFile(GITATTRIBUTES, lfs=False)}
        self._commit(repo, "main", initial, set(), "initial commit", "", author)
        return repo

    def _commit(
        self,
        repo: Repo,
        branch: str,
        additions: dict[str, StoredFile],
        deletions: set[str],
        title: str,
        message: str,
        author: str,
        parent_commit: str | None = None,
    ) -> str:
        parent = repo.branches.get(branch)
        if parent_commit is not None and (parent is None or not parent.startswith(parent_commit)):
            raise HubError(412, f"Parent commit {parent_commit} is not the head of {branch}.")
        files = dict(repo.commits[parent].files) if parent else {}
        for path in deletions:
            if path.endswith("/"):
                files = {p: f for p, f in files.items() if not p.startswith(path)}
            elif path in files:
                del files[path]
            else:
                raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
        files.update(additions)
        oid = secrets.token_hex(20)
        repo.commits[oid] = Commit(oid, parent, title, message, author, _now(), files)
        repo.branches[branch] = oid
        return oid

    @staticmethod
    def _is_lfs(path: str, content: bytes) -> bool:
        return path.endswith(LFS_SUFFIXES) or len(content) >= LFS_MIN_SIZE or b"\0" in content

    # -- auth --------------------------------------------------------------------------------

    def _user(self, headers: Any) -> tuple[str, str] | None:
        auth = headers.get("Authorization", "")
        if not auth:
            return None
        token = auth.removeprefix("Bearer ").strip()
        if token not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.tokens[token]

    def _can_write(self, user: tuple[str, str] | None, namespace: str) -> bool:
        if user is None or user[1] != "write":
            return False
        return namespace == user[0] or namespace in self.orgs.get(user[0], [])

    def _repo(self, repo_id: str, user: tuple[str, str] | None, *, write: bool = False) -> Repo:
        repo = self.repos.get(repo_id)
        namespace = repo_id.split("/")[0]
        visible = repo is not None and (
            not repo.private or (user is not None and self._can_read(user, namespace))
        )
        if not visible:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if write and not self._can_write(user, namespace):
            raise HubError(403, f"You don't have the rights to write to {repo_id}.")
        return repo

    def _can_read(self, user: tuple[str, str], namespace: str) -> bool:
        return namespace == user[0] or namespace in self.orgs.get(user[0], [])


_REPO = r"(?P<repo>[^/]+/[^/]+?)"
_API = rf"^/api/models/{_REPO}"


class _Handler(BaseHTTPRequestHandler):
    hub: LoopbackHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        body = self._body() if method in ("POST", "PUT") else b""
        hub = self.hub
        hub.requests.append((method, path))
        routes = [
            ("GET", r"^/api/whoami-v2$", self._whoami),
            ("POST", r"^/api/repos/create$", self._create_repo),
            ("POST", r"^/api/validate-yaml$", self._validate_yaml),
            ("GET", rf"{_API}/auth-check(?P<write>/write)?$", self._auth_check),
            ("POST", rf"{_API}/preupload/(?P<rev>[^/]+)$", self._preupload),
            ("POST", rf"{_API}/commit/(?P<rev>[^/]+)$", self._commit),
            ("GET", rf"{_API}/commits/(?P<rev>[^/]+)$", self._commits),
            ("GET", rf"{_API}/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?$", self._tree),
            ("POST", rf"{_API}/paths-info/(?P<rev>[^/]+)$", self._paths_info),
            ("POST", rf"{_API}/branch/(?P<branch>[^/]+)$", self._create_branch),
            ("GET", rf"{_API}/refs$", self._refs),
            ("GET", rf"{_API}(?:/revision/(?P<rev>[^/]+))?$", self._info),
            ("POST", rf"^/{_REPO}\.git/info/lfs/objects/batch$", self._lfs_batch),
            ("PUT", r"^/__lfs/(?P<oid>[0-9a-f]{64})$", self._lfs_put),
            ("POST", r"^/__lfs-verify$", self._lfs_verify),
            ("GET", rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", self._resolve),
            ("HEAD", rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", self._resolve),
        ]
        try:
            for route_method, pattern, handler in routes:
                match = re.match(pattern, path)
                if route_method == method and match:
                    args = {k: unquote(v) if v else v for k, v in match.groupdict().items()}
                    with hub.lock:
                        user = hub._user(self.headers)
                        handler(user=user, body=body, query=query, method=method, **args)
                    return
            raise HubError(404, f"No route for {method} {path} on the loopback Hub.")
        except HubError as err:
            headers = dict(err.headers)
            if err.code:
                headers["X-Error-Code"] = err.code
            headers["X-Error-Message"] = err.message
            self._json({"error": err.message, **err.body}, status=err.status, headers=headers)

    # -- replies -----------------------------------------------------------------------------

    def _send(
        self, status: int, content: bytes, headers: dict[str, str], *, send_body: bool = True
    ) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if send_body and self.command != "HEAD":
            self.wfile.write(content)

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        content = json.dumps(data).encode()
        self._send(status, content, {"Content-Type": "application/json", **(headers or {})})

    # -- routes ------------------------------------------------------------------------------

    def _whoami(self, user: tuple[str, str] | None, **_: Any) -> None:
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        name, role = user
        orgs = [
            {"type": "org", "name": org, "roleInOrg": "write"}
            for org in self.hub.orgs.get(name, [])
        ]
        self._json(
            {
                "type": "user",
                "id": hashlib.md5(name.encode()).hexdigest()[:24],
                "name": name,
                "fullname": name,
                "orgs": orgs,
                "auth": {"type": "access_token", "accessToken": {"displayName": "t", "role": role}},
            }
        )

    def _create_repo(self, user: tuple[str, str] | None, body: bytes, **_: Any) -> None:
        payload = json.loads(body)
        if payload.get("type", "model") != "model":
            raise HubError(400, "The loopback Hub only holds model repos.")
        namespace = payload.get("organization") or (user[0] if user else None)
        if user is None:
            raise HubError(401, "You must be authenticated to create a repo.")
        if not self.hub._can_write(user, namespace):
            raise HubError(403, f"You don't have the rights to create a model under {namespace}.")
        repo_id = f"{namespace}/{payload['name']}"
        url = f"{self.hub.url}/{repo_id}"
        if repo_id in self.hub.repos:
            raise HubError(409, "You already created this model repo", url=url)
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        self.hub._create(repo_id, private=private, author=user[0])
        self._json({"url": url, "name": repo_id, "id": secrets.token_hex(12)})

    def _validate_yaml(self, body: bytes, **_: Any) -> None:
        content = json.loads(body)["content"]
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        if match is None:
            self._json({"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]})
            return
        try:
            yaml.safe_load(match.group(1))
        except yaml.YAMLError as err:
            self._json({"errors": [{"message": str(err)}], "warnings": []}, status=400)
            return
        self._json({"errors": [], "warnings": []})

    def _auth_check(self, user: Any, repo: str, write: str | None, **_: Any) -> None:
        self.hub._repo(repo, user, write=bool(write))
        self._json({})

    def _commit_or_404(self, repo: Repo, rev: str) -> Commit:
        commit = repo.resolve(rev)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return commit

    def _info(self, user: Any, repo: str, rev: str | None = None, **_: Any) -> None:
        stored = self.hub._repo(repo, user)
        commit = self._commit_or_404(stored, rev or "main")
        self._json(
            {
                "_id": hashlib.md5(repo.encode()).hexdigest()[:24],
                "id": repo,
                "modelId": repo,
                "author": repo.split("/")[0],
                "sha": commit.oid,
                "lastModified": commit.date,
                "private": stored.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": [{"rfilename": path} for path in sorted(commit.files)],
            }
        )

    def _preupload(self, user: Any, repo: str, rev: str, body: bytes, **_: Any) -> None:
        stored = self.hub._repo(repo, user, write=True)
        commit = stored.resolve(rev)
        files = []
        for item in json.loads(body)["files"]:
            sample = base64.b64decode(item["sample"])
            lfs = item["path"].endswith(LFS_SUFFIXES) or item["size"] >= LFS_MIN_SIZE
            lfs = lfs or b"\0" in sample
            remote = commit.files.get(item["path"]) if commit else None
            # The client compares this oid with its own: sha256 for LFS, git blob sha1 otherwise.
            oid = None if remote is None else (remote.sha256 if remote.lfs else remote.blob_id)
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        self._json({"files": files, "commitOid": commit.oid if commit else None})

    def _lfs_batch(self, user: Any, repo: str, body: bytes, **_: Any) -> None:
        self.hub._repo(repo, user, write=True)
        payload = json.loads(body)
        if payload.get("operation") != "upload":
            raise HubError(400, "The loopback Hub's LFS batch endpoint only takes uploads.")
        objects = []
        for obj in payload["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs_objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.hub.url}/__lfs/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{self.hub.url}/__lfs-verify", "header": {}},
                }
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            {"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _lfs_put(self, oid: str, body: bytes, **_: Any) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, f"Uploaded content does not hash to {oid}.")
        self.hub.lfs_objects[oid] = body
        self._send(200, b"", {})

    def _lfs_verify(self, body: bytes, **_: Any) -> None:
        payload = json.loads(body)
        stored = self.hub.lfs_objects.get(payload["oid"])
        if stored is None or len(stored) != payload["size"]:
            raise HubError(404, f"LFS object {payload['oid']} was not uploaded.")
        self._json({"success": True})

    def _commit(self, user: Any, repo: str, rev: str, body: bytes, query: Any, **_: Any) -> None:
        stored = self.hub._repo(repo, user, write=True)
        if query.get("create_pr"):
            raise HubError(400, "The loopback Hub does not do pull requests.")
        if rev not in stored.branches:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        header: dict[str, Any] = {}
        additions: dict[str, StoredFile] = {}
        deletions: set[str] = set()
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                content = base64.b64decode(value["content"])
                additions[value["path"]] = StoredFile(content, lfs=False)
            elif key == "lfsFile":
                content = self.hub.lfs_objects.get(value["oid"])
                if content is None:
                    raise HubError(
                        422, f"LFS object {value['oid']} for {value['path']} is missing."
                    )
                additions[value["path"]] = StoredFile(content, lfs=True)
            elif key == "deletedFile":
                deletions.add(value["path"])
            elif key == "deletedFolder":
                deletions.add(value["path"].rstrip("/") + "/")
            else:
                raise HubError(400, f"Unknown commit operation {key!r}.")
        oid = self.hub._commit(
            stored,
            rev,
            additions,
            deletions,
            header.get("summary", ""),
            header.get("description", ""),
            user[0],
            header.get("parentCommit"),
        )
        self._json(
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.hub.url}/{repo}/commit/{oid}",
                "pullRequestUrl": None,
            }
        )

    def _commits(self, user: Any, repo: str, rev: str, **_: Any) -> None:
        stored = self.hub._repo(repo, user)
        self._commit_or_404(stored, rev)
        self._json(
            [
                {
                    "id": c.oid,
                    "title": c.title,
                    "message": c.message,
                    "authors": [{"user": c.author}],
                    "date": c.date,
                }
                for c in stored.history(rev)
            ]
        )

    def _entries(self, commit: Commit, prefix: str, recursive: bool) -> list[dict[str, Any]]:
        prefix = prefix.strip("/")
        base = f"{prefix}/" if prefix else ""
        entries: dict[str, dict[str, Any]] = {}
        for path, stored in sorted(commit.files.items()):
            if not path.startswith(base):
                continue
            rest = path[len(base) :]
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                if depth > 1 and not recursive:
                    break
                folder = base + "/".join(parts[:depth])
                entries.setdefault(folder, {"type": "directory", "path": folder, "oid": "0" * 40})
            if recursive or len(parts) == 1:
                entries[path] = stored.tree_entry(path)
        return list(entries.values())

    def _tree(self, user: Any, repo: str, rev: str, query: Any, sub: str | None = None, **_: Any):
        commit = self._commit_or_404(self.hub._repo(repo, user), rev)
        recursive = query.get("recursive", ["False"])[0].lower() in ("1", "true")
        if sub and not any(p.startswith(sub.strip("/") + "/") for p in commit.files):
            raise HubError(404, f"{sub} does not exist on {rev}", "EntryNotFound")
        self._json(self._entries(commit, sub or "", recursive))

    def _paths_info(self, user: Any, repo: str, rev: str, body: bytes, **_: Any) -> None:
        commit = self._commit_or_404(self.hub._repo(repo, user), rev)
        form = parse_qs(body.decode())
        out = []
        for path in form.get("paths", []):
            if path in commit.files:
                out.append(commit.files[path].tree_entry(path))
            elif any(p.startswith(path.rstrip("/") + "/") for p in commit.files):
                out.append({"type": "directory", "path": path, "oid": "0" * 40})
        self._json(out)

    def _create_branch(self, user: Any, repo: str, branch: str, body: bytes, **_: Any) -> None:
        stored = self.hub._repo(repo, user, write=True)
        if branch in stored.branches:
            raise HubError(409, f"Branch {branch} already exists.")
        start = (json.loads(body or b"{}") or {}).get("startingPoint") or "main"
        stored.branches[branch] = self._commit_or_404(stored, start).oid
        self._json({})

    def _refs(self, user: Any, repo: str, **_: Any) -> None:
        stored = self.hub._repo(repo, user)
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
            for name, oid in stored.branches.items()
        ]
        self._json({"branches": branches, "tags": [], "converts": []})

    def _resolve(self, user: Any, repo: str, rev: str, file: str, method: str, **_: Any) -> None:
        commit = self._commit_or_404(self.hub._repo(repo, user), rev)
        stored = commit.files.get(file)
        if stored is None:
            raise HubError(
                404,
                f"{file} does not exist on {rev}",
                "EntryNotFound",
                {"X-Repo-Commit": commit.oid},
            )
        content = stored.content
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{stored.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if stored.lfs:
            headers["X-Linked-Etag"] = f'"{stored.sha256}"'
            headers["X-Linked-Size"] = str(len(content))
        byte_range = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if byte_range and method == "GET":
            start = int(byte_range.group(1))
            end = int(byte_range.group(2)) if byte_range.group(2) else len(content) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            self._send(206, content[start : end + 1], headers)
            return
        self._send(200, content, headers)


__all__ = ["LoopbackHub", "git_blob_sha1"]

"""A loopback HTTP server speaking the part of the Hugging Face Hub API that `create_repo` and
`upload_folder` use in huggingface_hub 2.4.0 (read from its sources: hf_api.py, _commit_api.py,
lfs.py, _upload_pipeline.py):

    POST /api/repos/create                               create a repo (409 if it exists)
    POST /api/validate-yaml                              check a README's YAML header
    GET  /api/datasets/{repo}/tree/{rev}                 list files (for delete_patterns)
    GET  /api/datasets/{repo}/revision/{rev}             repo info (an upload that changes nothing)
    POST /api/datasets/{repo}/preupload/{rev}            "regular" or "lfs" per file, and its current oid
    POST /api/datasets/{repo}/commit/{rev}               the NDJSON commit (header, file, lfsFile, deletedFile)
    POST /datasets/{repo}.git/info/lfs/objects/batch     LFS batch API, "basic" transfer only
    PUT  /lfs-upload/{repo}/{oid}                        where the batch API sends the bytes
    POST /lfs-verify/{repo}                              the batch API's verify action

With `lfs=False` every file is "regular" (base64 inside the commit), which is what a client with
hf_xet installed can upload without a Xet storage server. Xet is not offered: its token route
(`/api/datasets/{repo}/xet-write-token/...`) is unknown here, like any other route, and is
answered 404 and recorded in `unknown`, so a test sees any call it did not expect.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

LFS_PATTERNS = ("*.parquet", "*.png", "*.arrow")  # the Hub's default .gitattributes for datasets (part)
REGULAR_MAX = 10 * 1024 * 1024
REPO = r"(?P<repo>[^/]+/[^/]+?)"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    repo_id: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)
    commits: list[dict] = field(default_factory=list)


class HubDouble:
    def __init__(self, token: str, *, lfs: bool = True) -> None:
        self.token, self.lfs = token, lfs
        self.repos: dict[str, Repo] = {}
        self.lfs_store: dict[str, bytes] = {}
        self.calls: list[tuple[str, str]] = []
        self.unknown: list[tuple[str, str]] = []
        self.create_payloads: list[dict] = []
        self.authorization: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "HubDouble":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # ---- routes ---------------------------------------------------------------------------
    def route(self, method: str, path: str, body: bytes, headers) -> tuple[int, object]:
        path, _, _query = path.partition("?")
        with self._lock:
            self.calls.append((method, path))
        if headers.get("Authorization"):
            self.authorization.add(headers["Authorization"])
        if m := re.fullmatch(rf"/lfs-upload/{REPO}/(?P<oid>[0-9a-f]{{64}})", path):
            return self.lfs_put(m["oid"], body) if method == "PUT" else (405, {})
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"error": "Invalid credentials in Authorization header"}
        routes = [
            ("POST", r"/api/repos/create", self.create),
            ("POST", r"/api/validate-yaml", self.validate_yaml),
            ("GET", rf"/api/datasets/{REPO}/tree/(?P<rev>[^/]+)", self.tree),
            ("GET", rf"/api/datasets/{REPO}/revision/(?P<rev>[^/]+)", self.revision),
            ("POST", rf"/api/datasets/{REPO}/preupload/(?P<rev>[^/]+)", self.preupload),
            ("POST", rf"/api/datasets/{REPO}/commit/(?P<rev>[^/]+)", self.commit),
            ("POST", rf"/datasets/{REPO}\.git/info/lfs/objects/batch", self.lfs_batch),
            ("POST", rf"/lfs-verify/{REPO}", self.lfs_verify),
        ]
        for want, pattern, handler in routes:
            if method == want and (m := re.fullmatch(pattern, path)):
                args = m.groupdict()
                if "repo" in args and handler != self.lfs_verify and args["repo"] not in self.repos:
                    return 404, {"error": "Repository not found"}
                return handler(body, **args)
        with self._lock:
            self.unknown.append((method, path))
        return 404, {"error": f"not offered by this Hub: {method} {path}"}

    def create(self, body: bytes) -> tuple[int, object]:
        payload = json.loads(body)
        self.create_payloads.append(payload)
        repo_id = f"{payload['organization']}/{payload['name']}"
        url = f"{self.url}/datasets/{repo_id}"
        if payload.get("type") != "dataset":
            return 400, {"error": "this Hub only holds dataset repos"}
        if repo_id in self.repos:
            return 409, {"error": "You already created this dataset repo", "url": url}
        attributes = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS).encode()
        self.repos[repo_id] = Repo(repo_id, private=payload.get("visibility") == "private",
                                   files={".gitattributes": attributes})
        return 200, {"url": url, "name": repo_id}

    def validate_yaml(self, body: bytes) -> tuple[int, object]:
        content = json.loads(body)["content"]
        match = re.match(r"^\s*---\r?\n([\s\S]*?)\r?\n---[ \t]*(\r?\n|$)", content)
        try:
            data = yaml.safe_load(match[1]) if match else None
        except yaml.YAMLError as exc:
            return 400, {"errors": [{"message": f"YAML: {exc}"}]}
        if not isinstance(data, dict):
            return 400, {"errors": [{"message": "the README has no YAML metadata block"}]}
        # Stricter than needed on purpose: a card saying "other" must name and link its terms.
        if data.get("license") == "other" and not (data.get("license_name") and data.get("license_link")):
            return 400, {"errors": [{"message": "license: other needs license_name and license_link"}]}
        return 200, {"errors": [], "warnings": []}

    def tree(self, body: bytes, repo: str, rev: str) -> tuple[int, object]:
        files = self.repos[repo].files
        return 200, [{"type": "file", "path": p, "size": len(d), "oid": git_blob_sha1(d)} for p, d in sorted(files.items())]

    def revision(self, body: bytes, repo: str, rev: str) -> tuple[int, object]:
        r = self.repos[repo]
        sha = r.commits[-1]["oid"] if r.commits else "0" * 40
        return 200, {"id": repo, "sha": sha, "private": r.private, "siblings": [{"rfilename": p} for p in r.files]}

    def preupload(self, body: bytes, repo: str, rev: str) -> tuple[int, object]:
        r = self.repos[repo]
        out = []
        for f in json.loads(body)["files"]:
            sample = base64.b64decode(f["sample"])
            mode = "lfs" if self.lfs and _is_lfs(f["path"], f["size"], sample) else "regular"
            current = r.files.get(f["path"])
            oid = None if current is None else (hashlib.sha256(current).hexdigest() if mode == "lfs"
                                                else git_blob_sha1(current))
            out.append({"path": f["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return 200, {"files": out}

    def commit(self, body: bytes, repo: str, rev: str) -> tuple[int, object]:
        r = self.repos[repo]
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0]["key"] != "header":
            return 400, {"error": "the first line must be the commit header"}
        files, ops = dict(r.files), []
        lfs_paths = set(r.lfs_paths)
        for line in lines[1:]:
            kind, value = line["key"], line["value"]
            if kind == "file":
                files[value["path"]] = base64.b64decode(value["content"])
                lfs_paths.discard(value["path"])
            elif kind == "lfsFile":
                data = self.lfs_store.get(value["oid"])
                if data is None or len(data) != value.get("size", len(data)):
                    return 422, {"error": f"LFS object {value['oid']} of {value['path']} was not uploaded"}
                files[value["path"]] = data
                lfs_paths.add(value["path"])
            elif kind == "deletedFile":
                if value["path"] not in files:
                    return 404, {"error": "A file with this name doesn't exist"}
                del files[value["path"]]
                lfs_paths.discard(value["path"])
            else:
                return 400, {"error": f"commit operation {kind!r} is not supported here"}
            ops.append((kind, value["path"]))
        oid = hashlib.sha1(body).hexdigest()
        r.files, r.lfs_paths = files, lfs_paths
        r.commits.append({"oid": oid, "summary": lines[0]["value"]["summary"],
                          "description": lines[0]["value"].get("description", ""), "operations": ops})
        return 200, {"commitUrl": f"{self.url}/datasets/{repo}/commit/{oid}", "commitOid": oid,
                     "pullRequestUrl": None}

    def lfs_batch(self, body: bytes, repo: str) -> tuple[int, object]:
        payload = json.loads(body)
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
            return 422, {"message": "only basic uploads are offered"}
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.lfs_store:
                entry["actions"] = {
                    "upload": {"href": f"{self.url}/lfs-upload/{repo}/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{self.url}/lfs-verify/{repo}", "header": {}},
                }
            objects.append(entry)
        return 200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}

    def lfs_put(self, oid: str, body: bytes) -> tuple[int, object]:
        if hashlib.sha256(body).hexdigest() != oid:
            return 400, {"error": "content does not match its oid"}
        with self._lock:
            self.lfs_store[oid] = body
        return 200, {}

    def lfs_verify(self, body: bytes, repo: str) -> tuple[int, object]:
        obj = json.loads(body)
        data = self.lfs_store.get(obj["oid"])
        return (200, {}) if data is not None and len(data) == obj["size"] else (404, {"error": "object not found"})


def _is_lfs(path: str, size: int, sample: bytes) -> bool:
    """Large, matched by the LFS patterns, or binary (a NUL byte in the first 512 bytes)."""
    return size > REGULAR_MAX or any(fnmatch.fnmatch(path, p) for p in LFS_PATTERNS) or b"\0" in sample


def _handler(hub: HubDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            status, payload = hub.route(self.command, self.path, self._body(), self.headers)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

    return Handler

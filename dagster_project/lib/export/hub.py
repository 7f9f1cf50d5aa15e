"""Publish one export version to a Hugging Face dataset repo with huggingface_hub.

`plan_publish` checks the export on disk (every file the manifest lists, with its size and
sha256) and says what would be uploaded where; `publish` creates the repo if needed (private
unless told otherwise) and uploads the version folder in one commit with `upload_folder`.
Files an earlier version left in the repo (data files, plots) are deleted in the same commit.

The token is read from the environment by the caller and passed in; it is never stored,
logged or put in an error message.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from dagster_project.lib.export.provenance import HUB_ID
from dagster_project.lib.export.writer import file_digest, read_latest

REPO_TYPE = "dataset"
MANIFEST = "manifest.json"
# What an earlier version may have left in the repo that this one replaces or no longer has.
STALE_PATTERNS = ["*.jsonl", "*.parquet", "plots/*", "LICENSE.md"]
LIBRARY = "r1-distill-warehouse"


class PublishError(ValueError):
    """Publishing cannot go ahead; the message is one line naming what to fix."""


@dataclass(frozen=True)
class UploadFile:
    path: str  # relative to the version folder = path in the repo
    bytes: int


@dataclass(frozen=True)
class PublishPlan:
    folder: Path
    version: str
    repo_id: str
    endpoint: str
    private: bool
    commit_message: str
    files: tuple[UploadFile, ...]
    simulated: bool

    @property
    def url(self) -> str:
        return f"{self.endpoint}/datasets/{self.repo_id}"

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def refusal(self, allow_simulated: bool) -> str | None:
        """Why this plan must not be uploaded, or None."""
        if self.simulated and not allow_simulated:
            return (f"export {self.version} is SIMULATED (its responses come from the project's simulator, not a "
                    "model): pass --allow-simulated (allow_simulated in the Launchpad) to publish it anyway")
        return None


@dataclass(frozen=True)
class PublishResult:
    repo_url: str
    commit_url: str
    commit_oid: str
    files: int


def plan_publish(exports_dir: Path, *, version: str | None, repo_id: str, endpoint: str, private: bool,
                 commit_message: str) -> PublishPlan:
    """What would be uploaded; raises PublishError when the export or the target is not right."""
    if not repo_id:
        raise PublishError("no Hub repo given: set [publish] repo_id in distill.toml or pass --repo-id")
    if not re.fullmatch(HUB_ID, repo_id):
        raise PublishError(f"repo id {repo_id!r} is not of the form user-or-org/name")
    version = version or read_latest(exports_dir)
    if not version:
        raise PublishError(f"no export in {exports_dir}: run `distill export` (or materialize sft_export) first")
    folder = Path(exports_dir) / version
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise PublishError(f"export {version} not found: {manifest_path} does not exist")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        listed = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PublishError(f"{manifest_path}: not an export manifest ({exc})") from None
    if not isinstance(manifest.get("simulated"), bool):
        raise PublishError(f"{manifest_path}: no `simulated` flag, so it cannot be told apart from a simulated export")
    files = [_checked(folder, name, info) for name, info in sorted(listed.items())]
    files.append(UploadFile(MANIFEST, manifest_path.stat().st_size))
    return PublishPlan(folder=folder, version=version, repo_id=repo_id, endpoint=endpoint.rstrip("/"),
                       private=private, commit_message=commit_message.replace("{version}", version),
                       files=tuple(files), simulated=manifest["simulated"])


def _checked(folder: Path, name: str, info: dict) -> UploadFile:
    path = folder / name
    if not path.is_file():
        raise PublishError(f"{path}: listed in {MANIFEST} but missing")
    size, sha = file_digest(path)
    if size != info.get("bytes") or sha != info.get("sha256"):
        raise PublishError(f"{path}: size or sha256 differs from {MANIFEST}; the export was changed after it "
                           "was written: write a new one")
    return UploadFile(name, size)


def read_token(token_env: str) -> str:
    """The Hub token from the environment variable named in `[publish] token_env`."""
    token = os.environ.get(token_env, "")
    if not token.strip():
        raise PublishError(f"environment variable {token_env} is not set: it must hold a Hugging Face token with "
                           "write access ([publish] token_env names the variable)")
    return token.strip()


def publish(plan: PublishPlan, token: str) -> PublishResult:
    """Create the dataset repo if needed and upload the version folder in one commit."""
    import httpx2
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi(endpoint=plan.endpoint, token=token, library_name=LIBRARY)
    try:
        repo = api.create_repo(plan.repo_id, repo_type=REPO_TYPE, private=plan.private, exist_ok=True)
        info = api.upload_folder(repo_id=plan.repo_id, repo_type=REPO_TYPE, folder_path=plan.folder,
                                 commit_message=plan.commit_message, allow_patterns=[f.path for f in plan.files],
                                 delete_patterns=STALE_PATTERNS)
    except OfflineModeIsEnabled:
        raise PublishError("HF_HUB_OFFLINE is set in the environment: unset it to publish") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise PublishError(f"{plan.url}: HTTP {status}: {_one_line(exc, token)}") from None
    except (httpx2.HTTPError, OSError, RuntimeError) as exc:
        message = _one_line(exc, token)
        hint = ("; the server does not offer Xet storage: set HF_HUB_DISABLE_XET=1 to upload with the plain LFS "
                "protocol") if "xet" in message.lower() else ""
        raise PublishError(f"upload to {plan.url} failed: {message}{hint}") from None
    return PublishResult(repo_url=str(repo), commit_url=info.commit_url, commit_oid=info.oid, files=len(plan.files))


def _one_line(exc: BaseException, token: str) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.replace(token, "***") if token else text


def describe(plan: PublishPlan, allow_simulated: bool = False) -> list[str]:
    """What a publish of `plan` does, one line each (no secrets: the plan holds none)."""
    visibility = "private" if plan.private else "public"
    lines = [f"export {plan.version} ({plan.folder}) -> {plan.url} (dataset repo; created {visibility} if new)",
             f"commit message: {plan.commit_message}",
             f"{len(plan.files)} files, {plan.total_bytes:,} bytes; files matching {', '.join(STALE_PATTERNS)} "
             "that this version does not have are deleted from the repo"]
    lines += [f"  {f.path:<48} {f.bytes:>14,} bytes" for f in plan.files]
    if plan.simulated:
        lines.append("SIMULATED export: " + ("publishing it anyway (allowed)" if allow_simulated else
                                             "refused unless --allow-simulated is given"))
    return lines

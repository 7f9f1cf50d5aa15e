"""One static partition per source repo, keyed by its manifest's URL-safe key."""

from __future__ import annotations

from functools import lru_cache

import dagster as dg

from dagster_project.config import SettingsError, config
from dagster_project.lib.sources.manifest import SourceManifest, load_manifests


@lru_cache(maxsize=1)
def source_manifests() -> dict[str, SourceManifest]:
    """Manifests by partition key (TOML files only; no warehouse access at load time)."""
    return load_manifests(config().manifests_dir)


def manifest_for(key: str) -> SourceManifest:
    manifests = source_manifests()
    if key not in manifests:
        raise SettingsError(f"unknown source key {key!r}; known: {', '.join(sorted(manifests))}")
    return manifests[key]


source_partitions = dg.StaticPartitionsDefinition(sorted(source_manifests()))

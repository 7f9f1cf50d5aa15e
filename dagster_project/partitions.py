"""One static partition per source repo, keyed by its manifest's URL-safe key.

A manifest that does not load is left out, and its one-line error is kept: the good sources stay
partitions, the code location still loads, and `raw_prompts` reports the errors (its
`source_manifests` check, its description and its run logs).
"""

from __future__ import annotations

import logging
from functools import lru_cache

import dagster as dg

from dagster_project.config import SettingsError, config
from dagster_project.lib.sources.manifest import ManifestError, ManifestSet, SourceManifest, load_manifests


@lru_cache(maxsize=1)
def manifest_set() -> ManifestSet:
    """Every manifest in the folder, read once per process (TOML files only; no warehouse access)."""
    loaded = load_manifests(config().manifests_dir)
    for line in loaded.error_lines():
        logging.getLogger("dagster_project").error("source manifest not loaded: %s", line)
    return loaded


def source_manifests() -> dict[str, SourceManifest]:
    """The manifests that load, by partition key."""
    return manifest_set().manifests


def manifest_errors() -> list[str]:
    """One line per manifest that does not load, naming the file and the key."""
    return manifest_set().error_lines()


def manifest_for(key: str) -> SourceManifest:
    manifests = manifest_set()
    if key in manifests.manifests:
        return manifests.manifests[key]
    broken = next((e for e in manifests.errors if e.key == key), None)
    if broken is not None:
        raise ManifestError(f"source {key!r} is not available: {broken}", key)
    raise SettingsError(f"unknown source key {key!r}; known: {', '.join(sorted(manifests.manifests))}")


source_partitions = dg.StaticPartitionsDefinition(sorted(source_manifests()))

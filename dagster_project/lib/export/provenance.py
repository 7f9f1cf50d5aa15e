"""Where an export's rows come from, under which terms, and how to cite them.

The facts come from the source manifests (`assets/sources/*.toml`: `repo`, `license`,
`license_note`, `online`, and each file's `repo_name` and `category`) plus the reference
dataset named in `[export]`. Nothing here is a hard-coded table of sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from dagster_project.lib.sources.manifest import SourceManifest

UNSTATED = ("other", "unknown")
HUB_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
"""A Hub repo id, `user-or-org/name`."""

# License ids by how much they restrict reuse: a combination takes the highest rank. Ids of one
# rank that differ (say cc-by-sa-4.0 and gpl-3.0) cannot be merged into one, nor can any id not
# listed here: the result is then "other", with the reasons spelled out.
_RANKS: dict[str, int] = {
    **dict.fromkeys(("cc0-1.0", "unlicense", "pddl", "wtfpl"), 0),
    **dict.fromkeys(("mit", "bsd-2-clause", "bsd-3-clause", "isc", "zlib", "bsd"), 1),
    **dict.fromkeys(("apache-2.0", "cc-by-4.0", "cc-by-3.0", "cc-by-2.0", "odc-by", "cdla-permissive-2.0",
                     "cdla-permissive-1.0", "bsd-3-clause-clear", "ecl-2.0", "artistic-2.0"), 2),
    **dict.fromkeys(("cc-by-sa-4.0", "cc-by-sa-3.0", "odbl", "gpl-3.0", "gpl-2.0", "lgpl-3.0", "lgpl-2.1",
                     "agpl-3.0", "mpl-2.0", "gfdl", "cdla-sharing-1.0", "epl-2.0"), 3),
    **dict.fromkeys(("cc-by-nc-4.0", "cc-by-nc-3.0", "cc-by-nc-2.0"), 4),
    **dict.fromkeys(("cc-by-nc-sa-4.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-2.0"), 5),
    **dict.fromkeys(("cc-by-nd-4.0", "cc-by-nc-nd-4.0", "cc-by-nc-nd-3.0"), 6),
}


@dataclass(frozen=True)
class SourceRef:
    """One dataset the export draws on: a prompt source, or the reference dataset."""

    name: str                       # as the card names it: the source repo
    hub_id: str | None              # Hugging Face dataset id, when the source is on the Hub
    url: str | None
    license: str
    license_note: str = ""
    role: str = "prompts"           # "prompts" or "reference"
    origin: str = ""                # real | proxy | hand_written (the bundled rows), for prompt sources
    categories: Mapping[str, str] = field(default_factory=dict)  # repo_name -> category

    @property
    def dataset_id(self) -> str:
        """The id listed in the card's `source_datasets`."""
        return self.hub_id or self.name


@dataclass(frozen=True)
class LicenseDecision:
    license: str                    # a Hugging Face license id, or "other"
    reason: str                     # one sentence: why this id
    license_name: str | None = None  # set when license == "other" (the Hub asks for both)
    license_link: str | None = None


def source_refs(manifests: Iterable[SourceManifest]) -> list[SourceRef]:
    """Prompt sources from the manifests, in a stable order."""
    refs = []
    for m in sorted(manifests, key=lambda m: m.repo.lower()):
        hub_id = m.online.get("huggingface")
        url = (f"https://huggingface.co/datasets/{hub_id}" if hub_id else
               f"https://modelscope.cn/datasets/{m.online['modelscope']}" if m.online.get("modelscope") else
               f"https://github.com/{m.online['github']}" if m.online.get("github") else None)
        refs.append(SourceRef(name=m.repo, hub_id=hub_id, url=url, license=m.license, license_note=m.license_note,
                              origin=m.origin, categories={f.repo_name: f.category for f in m.files}))
    return refs


def reference_ref(hub_id: str, license: str) -> SourceRef:
    return SourceRef(name=hub_id, hub_id=hub_id, url=f"https://huggingface.co/datasets/{hub_id}", license=license,
                     license_note="schema, repo_name values and category targets followed by this dataset",
                     role="reference")


def category_by_repo(refs: Iterable[SourceRef]) -> dict[str, str]:
    """repo_name -> category, as the manifests declare it."""
    out: dict[str, str] = {}
    for ref in refs:
        out.update(ref.categories)
    return out


def used(refs: Iterable[SourceRef], repo_names: Iterable[str | None]) -> list[SourceRef]:
    """The references with rows in the export (every reference when `repo_names` is empty)."""
    refs, present = list(refs), {r for r in repo_names if r}
    if not present:
        return refs
    return [r for r in refs if r.role != "prompts" or present & set(r.categories)]


def combine_licenses(refs: Iterable[SourceRef]) -> LicenseDecision:
    """The most restrictive license of `refs`, or "other" when they cannot be stated as one id."""
    refs = list(refs)
    if not refs:
        return LicenseDecision("other", "no source licenses were given", "unstated", "README.md")
    unstated = [r for r in refs if r.license in UNSTATED or r.license not in _RANKS]
    if unstated:
        named = ", ".join(f"{r.name} (`{r.license}`)" for r in unstated)
        return LicenseDecision("other", f"the terms of {named} are not a license id that can be combined "
                                        "with the others (see the table)", "mixed-source-terms", "LICENSE.md")
    top = max(_RANKS[r.license] for r in refs)
    ids = sorted({r.license for r in refs if _RANKS[r.license] == top})
    if len(ids) > 1:
        return LicenseDecision("other", "the most restrictive licenses differ and do not merge: " + ", ".join(f"`{i}`" for i in ids),
                               "mixed-source-terms", "LICENSE.md")
    others = sorted({r.license for r in refs} - set(ids))
    listed = ", ".join(f"`{i}`" for i in [*ids, *others])
    reason = (f"every source is `{ids[0]}`" if not others else
              f"`{ids[0]}` is the most restrictive of the sources' licenses ({listed})")
    return LicenseDecision(ids[0], reason)


def license_rows(refs: Iterable[SourceRef]) -> list[tuple[str, str, str, str]]:
    """(source, role, license, note) for the card's table."""
    return [(r.name, r.role, r.license, r.license_note) for r in refs]


def bibtex(ref: SourceRef, title: str | None = None) -> str:
    """A @misc entry naming the dataset and where it is published (the authors' own entry, when
    they give one, is on the dataset's page)."""
    key = re.sub(r"[^A-Za-z0-9]+", "_", ref.name).strip("_").lower()
    lines = [f"@misc{{{key},", f"  title = {{{title or ref.name}}},"]
    if ref.url:
        lines.append(f"  howpublished = {{\\url{{{ref.url}}}}},")
    if ref.hub_id:
        lines.append("  publisher = {Hugging Face},")
    if ref.license:
        lines.append(f"  note = {{License: {ref.license}}},")
    return "\n".join(lines + ["}"])

"""Dataset curation: near-duplicate removal, eval-set decontamination and versioned export."""

from .decontam import EvalItem, load_eval_sets, find_contamination
from .export import ExportResult, write_export
from .card import DatasetCard
from .near_dup import find_near_duplicates
from .secret_scan import find_secrets, secret_patterns

__all__ = [
    "DatasetCard",
    "EvalItem",
    "ExportResult",
    "find_contamination",
    "find_near_duplicates",
    "find_secrets",
    "load_eval_sets",
    "secret_patterns",
    "write_export",
]

"""Text folding shared by every stage: full-width ASCII, invisible characters.

One table each, used from Python (`to_halfwidth`, `strip_invisible`) and, as DuckDB macros of
the same names (`sql_macros`), from the SQL models, so matching, verification, judging and the
secret scan all fold text the same way.
"""

from __future__ import annotations

import re

# Full-width ASCII (U+FF01..U+FF5E) -> U+0021..U+007E, and the ideographic space -> a space.
FULLWIDTH = "".join(chr(cp) for cp in range(0xFF01, 0xFF5F)) + "\u3000"
HALFWIDTH = "".join(chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)) + " "
_HALFWIDTH_TABLE = str.maketrans(FULLWIDTH, HALFWIDTH)

# Characters that render as nothing: zero-width space/joiners, word joiner, BOM, soft hyphen.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_INVISIBLE_RE = re.compile(f"[{INVISIBLE}]")


def to_halfwidth(text: str) -> str:
    """Map full-width ASCII characters (``０-９``, ``Ａ-Ｚ``, ``％``...) and U+3000 to ASCII."""
    return text.translate(_HALFWIDTH_TABLE)


def strip_invisible(text: str) -> str:
    """Remove the characters in INVISIBLE."""
    return _INVISIBLE_RE.sub("", text)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_macros() -> list[str]:
    """`fold_width(s)` and `strip_invisible(s)` as DuckDB temporary macros (for tables, not views:
    a view that calls a temporary macro cannot be read by another connection)."""
    invisible = "[" + "".join(f"\\x{{{ord(c):04X}}}" for c in INVISIBLE) + "]"
    return [
        f"CREATE OR REPLACE TEMP MACRO fold_width(s) AS translate(s, {_sql_string(FULLWIDTH)}, {_sql_string(HALFWIDTH)})",
        f"CREATE OR REPLACE TEMP MACRO strip_invisible(s) AS regexp_replace(s, {_sql_string(invisible)}, '', 'g')",
    ]

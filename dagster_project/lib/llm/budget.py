"""A run's spending guard: a request cap that is exact and a cost cap that is a cap.

Each attempt reserves its worst-case cost when it is admitted (prompt tokens, bounded by the prompt's
UTF-8 bytes, plus `max_tokens` of output, at the configured prices); the reservation is replaced by
the attempt's real cost when it ends. An attempt is admitted only while spent + reserved is below the
cap, so the spend never exceeds the cap by more than one attempt's worst case.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from dagster_project.lib.llm.types import EndpointConfig, LLMRequest

TEMPLATE_TOKENS_PER_MESSAGE = 8  # role markers and the like, generously


@dataclass(frozen=True)
class Budget:
    """Stop sending once either limit is reached: `max_requests` requests, or `max_cost` spent."""

    max_requests: int | None = None
    max_cost: float | None = None


def worst_case_cost(cfg: EndpointConfig, req: LLMRequest) -> float:
    """An upper bound of one attempt's cost (a byte-level BPE token is at least one byte)."""
    prompt = sum(len(c.encode("utf-8")) + TEMPLATE_TOKENS_PER_MESSAGE for _, c in req.messages)
    return (prompt * cfg.price_input_per_mtok + cfg.max_tokens * cfg.price_output_per_mtok) / 1e6


class SpendGuard:
    """Reservations against a cost cap (no cap: every reservation succeeds at once)."""

    def __init__(self, max_cost: float | None) -> None:
        self.cap = max_cost
        self.spent = 0.0
        self.reserved = 0.0
        self.open = 0  # reservations not settled yet
        self.refused = False  # a reservation was refused: the cap is reached
        self._closed = False
        self._changed = asyncio.Event()

    async def reserve(self, worst: float) -> bool:
        """Wait until `worst` may be committed; False once the cap is reached for good (or closed)."""
        while not self._closed:
            if self.cap is None or self.spent + self.reserved < self.cap:
                self.reserved += worst
                self.open += 1
                return True
            if self.open == 0:  # nothing in flight can bring the commitment down
                self.refused = True
                return False
            await self._changed.wait()
        return False

    def settle(self, worst: float, actual: float) -> None:
        """An attempt ended: its real cost replaces its reservation."""
        self.reserved = max(0.0, self.reserved - worst)
        self.open -= 1
        self.spent += actual
        self._notify()

    def close(self) -> None:
        """Refuse every reservation from now on (a stop was requested)."""
        self._closed = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

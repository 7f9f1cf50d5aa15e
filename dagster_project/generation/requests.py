"""What the generation stage asks R1 for a source: one request per (selected prompt, sample index)."""

from __future__ import annotations

from dagster_project.lib.llm.types import LLMRequest

SELECTED_SQL = ("SELECT prompt_id, prompt_text FROM prompt_selection "
                "WHERE source_key = ? AND decision = 'selected' ORDER BY prompt_id")


def generation_requests(prompts: list[tuple[str, str]], partition: str, samples: int) -> list[LLMRequest]:
    """The prompt text is sent as the only user turn (no system prompt, as R1 is meant to be used)."""
    return [LLMRequest(prompt_id=pid, partition=partition, sample_index=i, messages=(("user", text),))
            for pid, text in prompts for i in range(samples)]

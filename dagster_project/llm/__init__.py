"""LLM access for the distillation pipeline: R1 generation and judge calls.

Public API:
  * types:     EndpointConfig, LLMRequest, ConfigError, resolve_api_key
  * engine:    run_requests / run_requests_sync, Budget, ProgressSnapshot, RunSummary, format_progress
  * journal:   Journal, JournalWriter, JOURNAL_SCHEMA, request_hash, plan
  * parsing:   parse_response, StreamAccumulator, ParsedResponse, sft_output
  * tokens:    count_tokens
  * simulator: SimulatorSettings, SimulatorThread, start_simulator_process (local test server)
"""

from .engine import Budget, ProgressSnapshot, RunSummary, format_progress, run_requests, run_requests_sync
from .journal import JOURNAL_SCHEMA, Journal, JournalWriter, plan, request_hash
from .parsing import ParsedResponse, StreamAccumulator, parse_response, sft_output
from .tokens import count_tokens
from .types import ConfigError, EndpointConfig, LLMRequest, resolve_api_key

__all__ = [
    "Budget",
    "ConfigError",
    "EndpointConfig",
    "JOURNAL_SCHEMA",
    "Journal",
    "JournalWriter",
    "LLMRequest",
    "ParsedResponse",
    "ProgressSnapshot",
    "RunSummary",
    "StreamAccumulator",
    "count_tokens",
    "format_progress",
    "parse_response",
    "plan",
    "request_hash",
    "resolve_api_key",
    "run_requests",
    "run_requests_sync",
    "sft_output",
]

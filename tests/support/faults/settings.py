"""The settings of the fault suite: short timeouts, retries that do not wait, and the GLN whose
answers would show a half-applied day 1."""

from __future__ import annotations

from soredi_sync.config import HttpSettings, RetrySettings, Settings
from tests.support.sandbox import SWITCHED

# Three attempts, no waiting between them: the policy is under test, not our patience.
FAST_RETRY = RetrySettings(attempts=3, initial_wait=0, max_wait=0)
FAST_HTTP = HttpSettings(connect_timeout=2, read_timeout=0.5, write_timeout=2, pool_timeout=2)
# Day 1 switches this GLN's correspondence (adds FDIS91/FCTL, drops XDIS91): a half-applied
# day 1 would show in its answers.
PROBE_GLN = SWITCHED[0]


def fault_settings(database_url: str, **overrides: object) -> Settings:
    return Settings(database_url=database_url, retry=FAST_RETRY, http=FAST_HTTP, **overrides)

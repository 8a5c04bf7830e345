"""The generated sandbox the integration tests share (fixture ``sandbox_dir``), and what its
days are known to hold."""

from __future__ import annotations

# ``sandbox_dir``: the tiny profile with this seed, days 0..2.
SANDBOX_SEED = 11
SANDBOX_DAYS = 2

# GLNs that day 1 of the sandbox switches (adds FDIS91 and/or FCTL, removes XDIS91).
SWITCHED = ("5790000104376", "5790000105090", "5790000111046")

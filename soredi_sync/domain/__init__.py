"""Pure domain code: records, GLN rules, the message-type registry and the diff.

Nothing here imports sqlalchemy, httpx, zeep, tenacity or apscheduler (checked by a test).
"""

from __future__ import annotations

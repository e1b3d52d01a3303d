"""Where slow work runs: one small thread pool for reports and charts.

Reports are CPU-bound Python (SQLAlchemy, rendering) holding the GIL. Run on
asyncio's default pool, six of them at once starve the event loop thread, and
with it every acknowledgement. A dedicated pool of few threads keeps the loop
responsive under load: acknowledgements stay fast, and reports queue (their
response URLs stay valid for 30 minutes).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")

_WORKERS = max(1, int(os.environ.get("JOURNEY_REPORT_WORKERS", "1") or 1))
_pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="journey-report")

# A shorter GIL switch interval (default 5 ms) lets the event loop thread take
# the GIL back sooner from a report thread, which bounds acknowledgement latency.
sys.setswitchinterval(0.001)


async def in_worker(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_pool, partial(fn, *args))

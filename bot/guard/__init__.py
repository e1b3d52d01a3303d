"""What runs before any listener: limits on the request, then Slack's signature.

Bolt reads, decodes and parses a request's whole body before it checks the
signature, with no size limit or read deadline. In front of it, this room
makes sure that a request from anyone but Slack costs almost nothing:

- `server.py`: the uvicorn settings (concurrency limit, keep-alive and header
  deadlines, header size) and the protocol that gives the first request on a
  connection a deadline for its headers too;
- `middleware.py`: an ASGI middleware that refuses an oversized body (413,
  unread), a body that arrives too slowly (408), a missing, stale or wrong
  signature (401, checked on the raw bytes before anything is decoded), and a
  signed body that is not Slack's shape (400), each with one log line and no
  traceback, before Bolt's handler sees the request;
- `signature.py`: Slack's signing rule on raw bytes.

Who the user is and what they may see is decided in the listeners, by this
room's other half:

- `access.py`: each user looked up once with users.info (cached briefly) and
  sorted into admin, member, guest, other organization or deactivated; what
  each may see, export and share; the workspace from the installation Bolt
  authorized, never the payload's team;
- `fair.py`: the per-user rate limit on commands and report buttons, with the
  polite sentence that goes with it (what one workspace may queue is bounded
  by the report pool, bot/work/pool.py).
"""

from bot.guard.limits import Limits
from bot.guard.middleware import guard

__all__ = ["Limits", "guard"]

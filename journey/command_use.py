"""A per-person limit on uses in a sliding window, counted in the database.

Why the database: the bot runs as several replicas behind one URL, and a limit kept in
each process's memory gives a person their limit once per replica. Every replica shares
the store already, so the count lives there (journey/models/command_use.py), one row per
use kept for the window. Transport-agnostic: the Slack adapter (bot/guard/fair.py) calls
`take` with its workspace and user ids.
"""

from __future__ import annotations

from sqlalchemy import Engine, text


def take(
    engine: Engine, workspace_id: str, user_id: str, now: float, limit: int, window: float = 60.0
) -> float:
    """Count one use at `now` (epoch seconds) if `user_id` has fewer than `limit` in the
    `window` seconds before it, and return 0; otherwise count nothing and return the
    seconds until the oldest use in the window leaves it (retrying early does not push
    the wait out). Uses older than the window, anyone's, are deleted on the way.

    One transaction. Two replicas counting the same person in the same instant may
    both see room for one more, so the limit can be passed by one use then; it is a
    fairness limit, not a security boundary."""
    now_ms = int(now * 1000)
    cutoff = now_ms - int(window * 1000)
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM command_use WHERE used_at_ms <= :cutoff"), {"cutoff": cutoff}
        )
        count, oldest = conn.execute(
            text(
                "SELECT COUNT(*), MIN(used_at_ms) FROM command_use "
                "WHERE workspace_id = :ws AND user_id = :user AND used_at_ms > :cutoff"
            ),
            {"ws": workspace_id, "user": user_id, "cutoff": cutoff},
        ).one()
        if count >= limit:
            return max(0.0, window - (now_ms - int(oldest)) / 1000)
        conn.execute(
            text(
                "INSERT INTO command_use (workspace_id, user_id, used_at_ms) "
                "VALUES (:ws, :user, :at)"
            ),
            {"ws": workspace_id, "user": user_id, "at": now_ms},
        )
    return 0.0

"""The commands and report buttons each person used in the last minute, for the
per-user rate limit (bot/guard/fair.py).

In the database, not in each process's memory, so every replica of the bot counts the
same uses: with two replicas behind a load balancer a person gets their limit once,
not once per replica. One row per use, kept for the window (60 s) and deleted after it
by whoever counts next, so the table holds at most the limit's worth of rows per person
active in the last minute. Like every table with a workspace id, a purge empties it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel


class CommandUse(SQLModel, table=True):
    __tablename__ = "command_use"
    __table_args__ = (
        Index("ix_command_use_user", "workspace_id", "user_id", "used_at_ms"),
        Index("ix_command_use_time", "used_at_ms"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=32)
    used_at_ms: int = Field(sa_type=BigInteger)  # epoch milliseconds (wall clock)

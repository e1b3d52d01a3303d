"""A record of every export of customer data out of a report: who, in which workspace,
when, which report, how many rows, and where it went.

Exports (the at-risk CSV) and shares (a report posted into a channel) carry customer
names and emails out of a private reply, so an admin may need to answer "who took the
list, and when". Like the rest of the workspace's data it is deleted by a purge
(journey/uninstall.py deletes every table's rows with the workspace's id).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from journey.models.types import EpochDateTime


class ExportRecord(SQLModel, table=True):
    __tablename__ = "export_record"
    __table_args__ = (Index("ix_export_record_workspace", "workspace_id", "exported_at"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=32)
    exported_at: datetime = Field(sa_type=EpochDateTime)
    report: str = Field(max_length=100)  # e.g. "churn at-risk CSV (90d)", "churn report share"
    rows: int
    destination: str = Field(max_length=32)  # "dm" (a file in the user's DM) or a channel id

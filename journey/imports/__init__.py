"""`journey import`: CSV files of customers, orders and journey events into the store.

Why it is built the way it is:

- One source for every file. Customers are keyed per source, so the customer ids
  in orders.csv and events.csv only name the customers of customers.csv when all
  three files go to the same source; the default source is therefore one shared
  source named "csv" (override it per shop with `source_name`).
- Nothing is guessed silently. A row that cannot be read exactly (an ambiguous
  date, "12,50", an unknown event kind, a second row with the same id but other
  values) is reported with its file, physical line number and reason, never
  patched. Only identical repeats of a row are dropped quietly, since they
  carry no new information (concatenated exports repeat rows).
- All or nothing without SAVEPOINTs. With `all_or_nothing` the file is first
  read completely without touching the database, and written only if every row
  is good. A bad last line of a million-row file then costs seconds of reading,
  not minutes of writes and a rollback; and no savepoint is needed, which
  matters because pysqlite (with SQLAlchemy's default transaction handling)
  commits a savepoint opened before the transaction's first write when it is
  released. The file is streamed in both passes: memory holds one batch of
  records plus one small entry per id for duplicate detection.
- Every write goes through `journey.ingest.Ingestor`, so a re-import of the
  same file is an upsert that reports every record as unchanged, and the
  journey state of exactly the touched customers is refreshed at the end.
- The function works in the caller's transaction and never commits; if it
  raises, the caller must roll back (`journey.db.session_scope` does).
"""

from journey.imports.common import (
    DEFAULT_SOURCE_NAME,
    FILE_KINDS,
    MAX_ERRORS,
    SOURCE_KIND,
    FileKind,
    ImportResult,
    RowError,
)
from journey.imports.run import import_csv
from journey.imports.values import parse_cents, parse_time

__all__ = [
    "DEFAULT_SOURCE_NAME",
    "FILE_KINDS",
    "MAX_ERRORS",
    "SOURCE_KIND",
    "FileKind",
    "ImportResult",
    "RowError",
    "import_csv",
    "parse_cents",
    "parse_time",
]

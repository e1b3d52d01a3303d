"""The work a process does after acknowledging: tracked, bounded, and drained at shutdown.

- inflight.py: every listener run (Bolt starts them as untracked tasks after the
  acknowledgement) and every background sync is registered while it runs, so a
  SIGTERM can wait for them, tell the users of those that cannot finish in time
  to run the command again, and log what happened.
- bot/work/pool.py: the report pool every report and chart runs on.
"""

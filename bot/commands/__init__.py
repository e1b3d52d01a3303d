"""The `/journey` language (language.py), the report service behind it (service.py),
and the digest/alerts subscription commands (schedule_settings.py)."""

"""Errors a user can act on.

Anything raised as a JourneyError carries a message written for the person
running the command (what went wrong and what to do); the CLI and the bot show
it as is. Every other exception is a bug and is logged, never shown raw.
"""


class JourneyError(Exception):
    """A problem with the user's input or environment, explained in plain words."""


class NotFound(JourneyError):
    """A named thing (workspace, customer, source) does not exist."""

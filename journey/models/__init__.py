"""The store's tables. Importing this package registers them all on SQLModel.metadata."""

from journey.models import schedule  # noqa: F401  (digests and alerts: journey/models/schedule.py)
from journey.models.command_use import CommandUse
from journey.models.customer import Customer, JourneyEvent, PersonDecision
from journey.models.export import ExportRecord
from journey.models.import_claim import ImportClaim
from journey.models.installation import SlackInstallation, SlackOAuthState
from journey.models.journey_state import MAX_STAGES, CustomerJourney
from journey.models.review import ReviewRequest
from journey.models.source import Source, SyncCursor
from journey.models.workspace import Workspace

__all__ = [
    "MAX_STAGES",
    "CommandUse",
    "Customer",
    "CustomerJourney",
    "ExportRecord",
    "ImportClaim",
    "JourneyEvent",
    "PersonDecision",
    "ReviewRequest",
    "SlackInstallation",
    "SlackOAuthState",
    "Source",
    "SyncCursor",
    "Workspace",
]

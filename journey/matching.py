"""The values records join on, as a workspace's settings say to normalise them.

journey/people.py joins records whose keys are equal; this module makes the keys, one
function per rule, so the rules can change without touching how people are built:

- `email_key`: trimmed and case-folded always. With `email_drop_tags` the `+tag` of the
  local part is dropped (`ann+shop@x.com` is `ann@x.com`): sub-addressing is how Gmail,
  Outlook, iCloud, Fastmail and Proton deliver one mailbox under many tags. With
  `email_ignore_dots` the dots of a Gmail address's local part are ignored and
  googlemail.com is gmail.com (`a.nn@googlemail.com` is `ann@gmail.com`): Gmail delivers
  those to one mailbox, but most providers and company domains do not (`jo.smith@` and
  `josmith@` at a company may be two people), so the dot rule applies to gmail.com and
  googlemail.com only. Both are off by default: a tag or a dot may be a deliberate second
  identity, and joining is harder to notice than not joining.
- `phone_key`: the number in E.164 (`+33612345678`), read with Google's libphonenumber
  (the `phonenumbers` package), a number without a country code read as one of the
  workspace's country (`country`). Only when `match_phone` is on; a number libphonenumber
  does not hold valid for its country (too short, an unassigned range, `000 000 0000`)
  gives no key: never joined on a guess.

A workspace's settings are read once per relink (`MatchRules.of`); changing one rebuilds
the workspace's people (journey/cli.py `journey settings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
MAX_EMAIL = 320
MAX_PHONE = 64


@dataclass(frozen=True)
class MatchRules:
    """How a workspace normalises the values records join on (all off: the defaults)."""

    email_drop_tags: bool = False
    email_ignore_dots: bool = False
    match_phone: bool = False
    country: str | None = None

    @classmethod
    def of(cls, session: Session, workspace_id: str) -> MatchRules:
        row = session.execute(
            text(
                "SELECT email_drop_tags, email_ignore_dots, match_phone, country "
                "FROM workspace WHERE id = :ws"
            ),
            {"ws": workspace_id},
        ).first()
        if row is None:
            return cls()
        return cls(bool(row[0]), bool(row[1]), bool(row[2]), row[3] or None)

    def email_key(self, email: str | None) -> str | None:
        """The email as the rule compares it, None when it is not an address."""
        return email_key(email, self.email_drop_tags, self.email_ignore_dots)

    def phone_key(self, phone: str | None) -> str | None:
        """The phone number in E.164 when the phone rule is on, else None."""
        if not self.match_phone:
            return None
        return phone_key(phone, self.country)

    def effective(self) -> tuple[bool, bool, bool, str | None]:
        """What decides the keys: the country matters only while the phone rule is on
        (setting it beforehand rebuilds nothing)."""
        country = self.country if self.match_phone else None
        return (self.email_drop_tags, self.email_ignore_dots, self.match_phone, country)

    def describe(self) -> list[str]:
        """The rules in force, in words (for `journey settings` and `people show`)."""
        email = "trimmed and case-folded"
        if self.email_drop_tags:
            email += ", +tags dropped"
        if self.email_ignore_dots:
            email += ", dots ignored in Gmail addresses"
        if self.match_phone:
            where = self.country or "none: only +code numbers join"
            phone = f"on (E.164, numbers without a country code read as {where})"
        else:
            phone = f"off (country {self.country} when on)" if self.country else "off"
        return [f"emails {email}", f"phone numbers {phone}"]


def email_key(email: str | None, drop_tags: bool = False, ignore_dots: bool = False) -> str | None:
    """Trimmed and case-folded; `+tags` dropped and Gmail dots ignored when asked."""
    if not email:
        return None
    key = email.strip().casefold()
    local, at, domain = key.rpartition("@")
    if not at or not local or not domain:
        return None
    if drop_tags and "+" in local:
        local = local.split("+", 1)[0] or local  # "+only@x.com" keeps its name
    if ignore_dots and domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", "") or local, "gmail.com"
    key = f"{local}@{domain}"
    return key if len(key) <= MAX_EMAIL else None


def phone_key(phone: str | None, country: str | None) -> str | None:
    """The number in E.164, or None when it cannot be read as a valid number."""
    if not phone or len(phone) > MAX_PHONE:
        return None
    return _e164(phone.strip(), (country or "").upper() or None)


@lru_cache(maxsize=65536)
def _e164(phone: str, country: str | None) -> str | None:
    import phonenumbers  # ~0.1 s to import: only workspaces that match on phone pay it

    try:
        number: Any = phonenumbers.parse(phone, country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def known_country(code: str) -> bool:
    """Whether libphonenumber knows this ISO 3166 country code (FR, US, GB...)."""
    import phonenumbers

    return code.upper() in phonenumbers.SUPPORTED_REGIONS

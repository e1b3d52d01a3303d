"""Mailchimp: Audience > All contacts > Export Audience (one CSV per status).

Header (public code that reads the export, citing Mailchimp's help page
"About your export file": `Email Address,First Name,Last Name,MEMBER_RATING,
OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,...,TAGS,LEID`, found with the code search
corpus; the full list below and the unsubscribed/cleaned files' columns are
Mailchimp's documented layout as far as those sources show it):

    Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,
    CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,
    NOTES,TAGS

The unsubscribed file adds UNSUB_TIME, UNSUB_CAMPAIGN_TITLE, UNSUB_CAMPAIGN_ID,
UNSUB_REASON, UNSUB_REASON_OTHER; the cleaned file CLEAN_TIME,
CLEAN_CAMPAIGN_TITLE, CLEAN_CAMPAIGN_ID. Times are UTC (GMTOFF is the
subscriber's offset, for sending). Every contact in any of the files
subscribed once: a `subscribe` event (consideration) at its confirmation time,
else its opt-in time.
"""

from journey.imports.format import VendorFormat

FORMAT = VendorFormat(
    name="mailchimp_audience",
    title="Mailchimp audience export",
    records="contacts",
    signature=("Email Address", "MEMBER_RATING", "OPTIN_TIME"),
    fields={
        "email": ("Email Address",),
        "first_name": ("First Name",),
        "last_name": ("Last Name",),
        "first_seen": ("OPTIN_TIME", "CONFIRM_TIME"),
        "subscribed_at": ("CONFIRM_TIME", "OPTIN_TIME"),
    },
    subscribe_kind="subscribe",
    timezone="UTC",
    known={
        "LAST_CHANGED": "the last edit of the contact",
        "UNSUB_TIME": "leaving the list is not a journey stage (the subscription stays a fact)",
        "CLEAN_TIME": "a bounced address, not a journey stage",
        "MEMBER_RATING": "engagement stars, not a stage",
        "UNSUB_REASON": "why they left",
        "UNSUB_REASON_OTHER": "why they left",
    },
    export_help="Mailchimp > Audience > All contacts > Export Audience",
)

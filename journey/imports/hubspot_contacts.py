"""HubSpot: Contacts > Export (all properties or the default view).

Header (HubSpot's contact properties as their export labels them; public code
reading the export: jadTahaGit/zoho Dev-74/Dev-74/02-partition/03-Subscribers.sql
selects `"Lifecycle Stage"`, `"Create Date"`, `"Original Source"`,
`"Became a Subscriber Date"` from "Contacts (HubSpot CRM)"; HubSpot's property
list labels `hs_lifecyclestage_<stage>_date` as `Became a <Stage> Date`;
newer exports name the contact `Record ID` and the source
`Original Traffic Source`, see /work/shared/notes/store-apis.md):

    Record ID,First Name,Last Name,Email,Lifecycle Stage,Create Date,
    Became a Subscriber Date,Became a Lead Date,Became a Marketing Qualified Lead Date,
    Became a Sales Qualified Lead Date,Became an Opportunity Date,
    Became a Customer Date,Became an Evangelist Date,Original Traffic Source,...

Lifecycle Stage is the stage's *label*. Each `Became a ... Date` becomes the
stage event at that date; a custom stage's column stops the import unless
`--map "Became a Patient Date=purchase"` says which journey stage it is. Dates
follow the exporting user's settings: ISO, or numeric decided from the file.
"""

import re

from journey.imports.format import VendorFormat

FORMAT = VendorFormat(
    name="hubspot_contacts",
    title="HubSpot contacts export",
    records="contacts",
    signature=("Lifecycle Stage", "Create Date", "Email"),
    fields={
        "id": ("Record ID", "Contact ID", "Contact id"),
        "email": ("Email",),
        "first_name": ("First Name",),
        "last_name": ("Last Name",),
        "phone": ("Phone Number", "Mobile Phone Number"),
        "first_seen": ("Create Date",),
        "channel": ("Original Traffic Source", "Original Source"),
        "stage": ("Lifecycle Stage",),
    },
    stage_date_pattern=re.compile(r"Became an? (.+) Date", re.IGNORECASE),
    stage_labels={
        "subscriber": "hubspot_stage:subscriber",
        "lead": "hubspot_stage:lead",
        "marketing qualified lead": "hubspot_stage:marketingqualifiedlead",
        "sales qualified lead": "hubspot_stage:salesqualifiedlead",
        "opportunity": "hubspot_stage:opportunity",
        "customer": "hubspot_stage:customer",
        "evangelist": "hubspot_stage:evangelist",
        # An export set to internal values writes the stages' internal names.
        "marketingqualifiedlead": "hubspot_stage:marketingqualifiedlead",
        "salesqualifiedlead": "hubspot_stage:salesqualifiedlead",
    },
    known={
        "Last Activity Date": "activity, not a stage",
        "Last Modified Date": "an edit, not a stage",
        "Recent Sales Email Replied Date": "activity, not a stage",
        "Lead Status": "a sales team's working status, not a lifecycle stage",
        "Number of Associated Deals": "a count",
        "Total Revenue": "a summary of deals; sync HubSpot for deals",
        "Annual Revenue": "the contact's company's size",
        "HubSpot Score": "a score, not a stage",
    },
    known_patterns=(
        (
            re.compile(r"Became an? Other Lifecycle Date", re.IGNORECASE),
            "HubSpot's catch-all stage",
        ),
        (
            re.compile(r"Original (Traffic )?Source Drill-?Down \d", re.IGNORECASE),
            "detail of the channel",
        ),
        (re.compile(r"(Last|First) .*Date", re.IGNORECASE), "activity, not a stage"),
    ),
    export_help="HubSpot > Contacts > Export (All properties, CSV)",
)

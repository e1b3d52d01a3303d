"""Square: Customers > Directory > Export customers.

Header: the signature is what public code reads as "Square's standard customer
export CSV format: Reference ID, First Name, Last Name, Email Address, Phone
Number, ..." (byesaw13/doveapp CSV_IMPORT_GUIDE.md, which also names the
`Square Customer ID` column). The later columns (`Creation Source`, `First Visit`,
`Last Visit`, `Transaction Count`, `Total Spend`...) were not confirmed from a
public file: a file without them still imports (they are optional here), and a
value column this format does not know stops the import with its name. Dates as
the dashboard writes them (`06/08/2026`, US).
"""

from journey.imports.format import VendorFormat

FORMAT = VendorFormat(
    name="square_customers",
    title="Square customers export",
    records="contacts",
    signature=("Reference ID", "First Name", "Last Name", "Email Address", "Phone Number"),
    fields={
        "id": ("Square Customer ID", "Reference ID"),
        "email": ("Email Address",),
        "first_name": ("First Name",),
        "last_name": ("Last Name",),
        "phone": ("Phone Number",),
        "first_seen": ("First Visit", "Creation Date"),
        "channel": ("Creation Source",),
    },
    known={
        "Last Visit": "a summary; the transactions export carries each visit",
        "Transaction Count": "a lifetime count; import the transactions export for purchases",
        "Total Spend": "a lifetime total; import the transactions export for purchases",
        "Birthday": "not a journey step",
        "Email Subscription Status": "consent to email, not a journey stage",
        "Instant Profile": "how the profile was made",
    },
    export_help="Square Dashboard > Customers > Directory > Export customers",
)

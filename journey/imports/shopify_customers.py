"""Shopify: Customers > Export > "Plain CSV file".

Header (public code that reads Shopify's customer export, found with the code
search corpus: a Rust point of sale's Shopify parser with
`First Name,Last Name,Email,Accepts Email Marketing,Company,Address1,Address2,City,
Province,Province Code,Country,Country Code,Zip,Phone,Accepts SMS Marketing,
Total Spent,Total Orders,Tags,Note,Tax Exempt`; newer exports start with
`Customer ID` and write `Default Address ...` columns).

The export has no creation date (noted in /work/shared/notes/store-apis.md):
customers get no first-seen date from it, and its totals are summaries, so
purchases come from the orders export.
"""

from journey.imports.format import VendorFormat

FORMAT = VendorFormat(
    name="shopify_customers",
    title="Shopify customers export",
    records="contacts",
    signature=("First Name", "Last Name", "Email", "Accepts Email Marketing", "Total Spent"),
    fields={
        "id": ("Customer ID",),
        "email": ("Email",),
        "first_name": ("First Name",),
        "last_name": ("Last Name",),
        "phone": ("Phone", "Default Address Phone"),
    },
    known={
        "Total Spent": "a lifetime total; import the orders export for purchases",
        "Total Orders": "a lifetime count; import the orders export for purchases",
        "Tax Exempt": "a tax setting, not a journey step",
    },
    export_help="Shopify admin > Customers > Export > All customers > Plain CSV file",
)

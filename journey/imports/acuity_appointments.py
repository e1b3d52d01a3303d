"""Acuity Scheduling (Squarespace Scheduling): Appointments > Reports > Export (CSV).

The booking export clinics and spas use: Acuity's help, "Importing and Exporting
Appointments and Clients" (https://help.acuityscheduling.com/hc/en-us/articles/360023934112),
puts the export under Appointments > Reports > Export; public code that reads
the file recognises it by `Start Time,End Time,First Name,Last Name,Phone,Email,
Type,Calendar,Date Scheduled` (a salon app's isAcuityAppointmentCsv test, found
with the code search corpus). The further columns read here (`Appointment Price`,
`Label`, `Canceled`, `Appointment ID`, and those left out: `Paid?`, `Amount Paid
Online`, `Certificate Code`) were not confirmed from a public file: each is
optional, and a value column this format does not know stops the import with
its name rather than being dropped.

Each appointment is a `booking` (decision) when it was scheduled; one whose
start has passed is a visit, a purchase for its `Appointment Price`, unless
it was canceled (a cancellation) or labelled a no-show (a booking only, counted
as a no-show). Times are in the account's time zone: --timezone, else the
workspace's.
"""

from journey.imports.format import Outcome, VendorFormat

FORMAT = VendorFormat(
    name="acuity_appointments",
    title="Acuity Scheduling appointments export",
    records="bookings",
    signature=("Start Time", "End Time", "First Name", "Last Name", "Email", "Type", "Calendar"),
    fields={
        "order_id": ("Appointment ID", "Id"),
        "customer_email": ("Email",),
        "first_name": ("First Name",),
        "last_name": ("Last Name",),
        "phone": ("Phone",),
        "ordered_at": ("Start Time",),
        "booked_at": ("Date Scheduled",),
        "amount": ("Appointment Price",),
        "cancelled": ("Canceled", "Cancelled"),
        "label": ("Label",),
    },
    statuses={"no_show": Outcome.NO_SHOW, "no-show": Outcome.NO_SHOW, "noshow": Outcome.NO_SHOW},
    cancelled_bookings=frozenset({"yes", "true", "1", "canceled", "cancelled"}),
    known={
        "End Time": "the visit is dated by its start",
        "Amount Paid Online": "part of the Appointment Price, paid ahead",
        "Paid?": "how the visit was paid, not whether it happened",
        "Certificate Code": "a package or gift certificate used",
    },
    export_help="Acuity > Appointments > Reports > Export (CSV)",
)

"""Appointments: booked by Callnfy (or imported from Google), rescheduled, cancelled, completed."""

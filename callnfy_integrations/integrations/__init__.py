"""A user's connections to Google Calendar and Zapier, and their combined status."""

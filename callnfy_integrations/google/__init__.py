"""Google Calendar: OAuth connection, encrypted tokens and their refresh, disconnect, sync settings."""

"""Microsoft 365 / Outlook calendar: connect, tokens, Graph, busy times for availability."""

"""`/zapier/v1`: the key-authenticated API the Zapier app's actions and searches call (DESIGN §12)."""

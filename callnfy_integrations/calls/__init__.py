"""Calls Callnfy answered for a user: who called, how long, the recording and what was said."""

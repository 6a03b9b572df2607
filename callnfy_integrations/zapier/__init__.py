"""Zapier: the account's API key, REST-hook subscriptions, and signed at-least-once webhook delivery."""

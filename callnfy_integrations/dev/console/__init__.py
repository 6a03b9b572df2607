"""The integrations console of the dev run: the SPA's settings screen, played through the public API."""

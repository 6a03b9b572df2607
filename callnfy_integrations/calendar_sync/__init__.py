"""The provider-neutral calendar sync engine; Google Calendar and Microsoft 365 are its adapters.

`remote` is what the engine knows of a provider's event (each adapter translates its own JSON into
it). The push state machine, backfill and sweeper, two-way apply and renewal build on it; an
adapter supplies only its OAuth details, API calls and notification endpoint.
"""

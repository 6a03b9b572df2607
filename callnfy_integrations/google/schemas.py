"""Request and response shapes of /integrations/google."""

import marshmallow as ma

from ..calendar_sync.schemas import SyncErrorSchema  # noqa: F401  (shown by /sync-errors)


class AuthUrlSchema(ma.Schema):
    authUrl = ma.fields.String()


class SettingsSchema(ma.Schema):
    # Documented as required; a missing or null one still reaches the service (as ""), which answers every
    # bad value with the contract's message rather than marshmallow's.
    syncMode = ma.fields.Raw(required=True, metadata={"type": "string", "enum": ["one-way", "two-way"]})

    @ma.pre_load
    def _missing_is_invalid(self, data, **kwargs):
        if isinstance(data, dict) and data.get("syncMode") is None:
            return {**data, "syncMode": ""}
        return data


class CalendarSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "Google's calendar id (the primary one's is the owner's email)"})
    name = ma.fields.String()
    primary = ma.fields.Boolean(metadata={"description": "the owner's primary calendar"})
    timeZone = ma.fields.String(attribute="time_zone", allow_none=True)
    busy = ma.fields.Boolean(metadata={"description": "whether its events make the owner busy (availability "
                                                      "settings' busyCalendars)"})

"""Request and response shapes of /integrations/google."""

import marshmallow as ma

from .. import public_ids
from ..timestamps import Timestamp


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


class SyncErrorSchema(ma.Schema):
    """One failed push (`calendar_sync.push.FailedPush`)."""

    appointmentId = ma.fields.Function(lambda f: public_ids.encode(public_ids.APPOINTMENT, f.appointment_id))
    scheduledAt = Timestamp(attribute="scheduled_at")
    status = ma.fields.String(metadata={"description": "the appointment's status"})
    state = ma.fields.String(metadata={"enum": ["pending", "failed"]})
    error = ma.fields.String(allow_none=True)
    attempts = ma.fields.Integer()
    nextAttemptAt = Timestamp(attribute="next_sync_at", allow_none=True,
                              metadata={"description": "when it is tried again (null: not retried until it changes)"})


class CalendarSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "Google's calendar id (the primary one's is the owner's email)"})
    name = ma.fields.String()
    primary = ma.fields.Boolean(metadata={"description": "the owner's primary calendar"})
    timeZone = ma.fields.String(attribute="time_zone", allow_none=True)
    busy = ma.fields.Boolean(metadata={"description": "whether its events make the owner busy (availability "
                                                      "settings' busyCalendars)"})

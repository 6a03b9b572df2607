"""Response shapes shared by the calendar providers' endpoints."""

import marshmallow as ma

from .. import public_ids
from ..timestamps import Timestamp


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

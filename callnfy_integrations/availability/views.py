"""HTTP surface of availability: the owner's settings, busy time and free slots, and holds."""

from __future__ import annotations

from flask.views import MethodView

from .. import public_ids
from ..api import Blueprint, ErrorEnvelopeSchema, MessageSchema
from ..auth import current_user_id
from ..errors import ValidationFailed
from ..extensions import db
from . import busy, refresh, service
from .schemas import (
    AvailabilityQuerySchema,
    AvailabilitySchema,
    AvailabilitySettingsSchema,
    AvailabilitySettingsUpdateSchema,
    HoldCreateSchema,
    HoldSchema,
)

blp = Blueprint("availability", __name__, description="The owner's busy time, free slots and holds")


@blp.route("/integrations/availability/settings")
class Settings(MethodView):
    @blp.login_required
    @blp.response(200, AvailabilitySettingsSchema)
    def get(self):
        """The owner's availability settings, defaults filled in"""
        return service.settings(current_user_id())

    @blp.login_required
    @blp.arguments(AvailabilitySettingsUpdateSchema)
    @blp.response(200, AvailabilitySettingsSchema)
    def put(self, body):
        """Change any subset of the availability settings (busyCalendars must be the owner's calendars,
        when their provider can list them now)"""
        user_id = current_user_id()
        unknown = busy.unknown_calendars(user_id, body.get("busy_calendars") or [])  # before any transaction
        if unknown:
            raise ValidationFailed(details={"busyCalendars": unknown})
        answer = service.update_settings(user_id, body)
        db.session.commit()
        return answer


@blp.route("/availability")
class Availability(MethodView):
    @blp.login_required
    @blp.arguments(AvailabilityQuerySchema, location="query")
    @blp.response(200, AvailabilitySchema)
    def get(self, query):
        """Busy time in a window (at most 31 days) and, with duration, the free slots"""
        user_id = current_user_id()
        settings_now = refresh.before_reading(user_id, query["from_"], query["to"])  # stale one-way calendars
        return service.availability(user_id, query["from_"], query["to"], query.get("duration"), query["step"],
                                    settings_now)


@blp.route("/availability/holds")
class Holds(MethodView):
    @blp.login_required
    @blp.arguments(HoldCreateSchema)
    @blp.response(201, HoldSchema)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="SLOT_UNAVAILABLE: the slot is not free")
    def post(self, body):
        """Keep a free slot while the caller decides (ttl seconds, at most 900)"""
        user_id = current_user_id()
        refresh.before_booking(user_id, body["scheduled_at"], body["duration"])
        hold = service.create_hold(user_id, body["scheduled_at"], body["duration"], body["ttl"])
        db.session.commit()
        return hold


@blp.route("/availability/holds/<hold_id>")
class HoldById(MethodView):
    @blp.login_required
    @blp.response(200, MessageSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such hold")
    def delete(self, hold_id):
        """Release a hold"""
        service.release_hold(current_user_id(), public_ids.decode(public_ids.HOLD, hold_id))
        db.session.commit()
        return {"message": "Hold released"}

"""HTTP surface of /appointments: parse, authorize, shape the envelope."""

from flask.views import MethodView

from .. import public_ids
from ..api import Blueprint, ErrorEnvelopeSchema
from ..auth import current_user_id
from ..availability import refresh
from ..extensions import db
from . import service
from .schemas import (
    AppointmentCreateSchema,
    AppointmentQuerySchema,
    AppointmentSchema,
    AppointmentUpdateSchema,
    CancelSchema,
    CompleteSchema,
)

blp = Blueprint("appointments", __name__, url_prefix="/appointments",
                description="Appointments booked by Callnfy or imported from Google Calendar")

def _appointment_id(appointment_id: str):
    return public_ids.decode(public_ids.APPOINTMENT, appointment_id)


@blp.route("")
class Appointments(MethodView):
    @blp.login_required
    @blp.arguments(AppointmentQuerySchema, location="query")
    @blp.response(200, AppointmentSchema(many=True))
    @blp.paginate()
    def get(self, query, pagination_parameters):
        """List appointments, newest first (page metadata in the X-Pagination header)"""
        items, total = service.list_appointments(
            current_user_id(), status=query.get("status"), starts_from=query.get("from_"),
            starts_before=query.get("to"), offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size)
        pagination_parameters.item_count = total
        return items

    @blp.login_required
    @blp.arguments(AppointmentCreateSchema)
    @blp.response(201, AppointmentSchema)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="SLOT_UNAVAILABLE (with requireFree or holdId)")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="holdId names no hold of this account")
    def post(self, body):
        """Book an appointment (the customer is found or created by phone); requireFree: only if free"""
        user_id = current_user_id()
        require_free, hold_id = body.pop("require_free"), body.pop("hold_id", None)
        refresh.guard_booking(user_id, body["scheduled_at"], body["duration"], require_free=require_free,
                              hold_id=public_ids.decode(public_ids.HOLD, hold_id) if hold_id else None,
                              hold_given=hold_id is not None)
        appointment = service.create_appointment(user_id, **body)
        db.session.commit()
        return appointment


@blp.route("/<appointment_id>")
class AppointmentById(MethodView):
    @blp.login_required
    @blp.response(200, AppointmentSchema)
    def get(self, appointment_id):
        """One appointment"""
        return service.get_appointment(current_user_id(), _appointment_id(appointment_id))

    @blp.login_required
    @blp.arguments(AppointmentUpdateSchema)
    @blp.response(200, AppointmentSchema)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema,
                      description="INVALID_TRANSITION; SLOT_UNAVAILABLE with requireFree")
    def patch(self, body, appointment_id):
        """Reschedule, change duration or notes, or correct the customer (scheduled appointments only)"""
        user_id, appointment_id = current_user_id(), _appointment_id(appointment_id)
        if body.pop("require_free", False):
            refresh.guard_move(user_id, appointment_id, body)
        appointment = service.update_appointment(user_id, appointment_id, body)
        db.session.commit()
        return appointment


@blp.route("/<appointment_id>/cancel")
class AppointmentCancel(MethodView):
    @blp.login_required
    @blp.arguments(CancelSchema, required=False)
    @blp.response(200, AppointmentSchema)
    def post(self, body, appointment_id):
        """Cancel a scheduled appointment"""
        appointment = service.cancel_appointment(current_user_id(), _appointment_id(appointment_id),
                                                 body.get("reason"))
        db.session.commit()
        return appointment


@blp.route("/<appointment_id>/complete")
class AppointmentComplete(MethodView):
    @blp.login_required
    @blp.arguments(CompleteSchema, required=False)
    @blp.response(200, AppointmentSchema)
    def post(self, body, appointment_id):
        """Mark a scheduled appointment completed, optionally with its actual duration"""
        appointment = service.complete_appointment(current_user_id(), _appointment_id(appointment_id),
                                                   body.get("duration"))
        db.session.commit()
        return appointment

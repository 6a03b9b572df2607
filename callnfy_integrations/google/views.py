"""HTTP surface of /integrations/google: parse, authorize, commit, shape the envelope."""

from flask import after_this_request, redirect, request
from flask.views import MethodView

from ..api import Blueprint, ErrorEnvelopeSchema, MessageSchema
from ..auth import current_user_id
from ..availability import service as availability
from ..extensions import db
from ..integrations.oauth_flow import clear_binder_cookie, set_binder_cookie
from . import calendars, service, sync
from .oauth import BINDER_COOKIE, CALLBACK_PATH
from .schemas import AuthUrlSchema, CalendarSchema, SettingsSchema, SyncErrorSchema

blp = Blueprint("google", __name__, url_prefix="/integrations/google", description="Google Calendar connection")


@blp.route("/connect")
class Connect(MethodView):
    @blp.login_required
    @blp.response(200, AuthUrlSchema)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema,
                      description="Already connected and healthy (with the calendar-list scope)")
    def post(self):
        """Start connecting Google Calendar: the consent URL to open (call with credentials: 'include')"""
        auth_url, binder = service.connect(current_user_id())

        @after_this_request
        def set_binder(response):
            return set_binder_cookie(response, BINDER_COOKIE, binder, CALLBACK_PATH)

        return {"authUrl": auth_url}


@blp.route("/callback")
class Callback(MethodView):
    @blp.response(302)
    def get(self):
        """Google's redirect after consent (no JWT: the user is found by `state`, the browser by its
        binder cookie); redirects to the app"""
        args = request.args
        location = service.complete_authorization(args.get("state"), args.get("code"), args.get("error"),
                                                  request.cookies.get(BINDER_COOKIE))
        db.session.commit()
        return clear_binder_cookie(redirect(location), BINDER_COOKIE, CALLBACK_PATH)


@blp.route("/disconnect")
class Disconnect(MethodView):
    @blp.login_required
    @blp.response(200, MessageSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Google Calendar not connected")
    def delete(self):
        """Disconnect: forgotten at once; revoked at Google in the background"""
        service.disconnect(current_user_id())
        db.session.commit()
        return {"message": "Google Calendar disconnected successfully"}


@blp.route("/settings")
class Settings(MethodView):
    @blp.login_required
    @blp.arguments(SettingsSchema)
    @blp.response(200, SettingsSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Google Calendar not connected")
    def put(self, body):
        """Choose one-way (Callnfy → Google) or two-way sync"""
        sync_mode = service.update_sync_mode(current_user_id(), body["syncMode"])
        db.session.commit()
        return {"syncMode": sync_mode}


@blp.route("/sync-errors")
class SyncErrors(MethodView):
    @blp.login_required
    @blp.response(200, SyncErrorSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """Appointments whose push to Google failed (for good, or waiting for a retry), newest first"""
        items, total = sync.failed_pushes(current_user_id(), offset=pagination_parameters.first_item,
                                          limit=pagination_parameters.page_size)
        pagination_parameters.item_count = total
        return items


@blp.route("/calendars")
class Calendars(MethodView):
    @blp.login_required
    @blp.response(200, CalendarSchema(many=True))
    @blp.alt_response(403, schema=ErrorEnvelopeSchema,
                      description="INSUFFICIENT_SCOPE: connected before calendars could be listed; reconnect")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Google Calendar not connected")
    @blp.alt_response(502, schema=ErrorEnvelopeSchema, description="GOOGLE_ERROR: Google refused the request")
    @blp.alt_response(503, schema=ErrorEnvelopeSchema, description="GOOGLE_UNAVAILABLE: Google did not answer")
    def get(self):
        """The owner's Google calendars, and whether each counts as busy for availability"""
        user_id = current_user_id()
        found = calendars.fetch(user_id)  # Google first: no transaction is open while it answers
        return calendars.mark_busy(found, availability.settings(user_id)["busy_calendars"])

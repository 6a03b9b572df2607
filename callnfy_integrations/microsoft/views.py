"""HTTP surface of /integrations/microsoft: parse, authorize, commit, shape the envelope."""

from flask import after_this_request, redirect, request
from flask.views import MethodView

from ..api import Blueprint, ErrorEnvelopeSchema, MessageSchema
from ..auth import current_user_id
from ..calendar_sync import push as calendar_push
from ..calendar_sync.schemas import SyncErrorSchema
from ..extensions import db
from ..integrations.models import MICROSOFT_CALENDAR
from ..integrations.oauth_flow import clear_binder_cookie, set_binder_cookie
from . import service
from .oauth import BINDER_COOKIE, CALLBACK_PATH
from .schemas import AuthUrlSchema, SettingsSchema

blp = Blueprint("microsoft", __name__, url_prefix="/integrations/microsoft",
                description="Microsoft 365 / Outlook calendar connection and sync (one-way and two-way)")


@blp.route("/connect")
class Connect(MethodView):
    @blp.login_required
    @blp.response(200, AuthUrlSchema)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="Already connected and healthy")
    def post(self):
        """Start connecting Microsoft 365: the consent URL to open (call with credentials: 'include')"""
        auth_url, binder = service.connect(current_user_id())

        @after_this_request
        def set_binder(response):
            return set_binder_cookie(response, BINDER_COOKIE, binder, CALLBACK_PATH)

        return {"authUrl": auth_url}


@blp.route("/callback")
class Callback(MethodView):
    @blp.response(302)
    def get(self):
        """Microsoft's redirect after consent (no JWT: the user is found by `state`, the browser by its
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
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Microsoft Calendar not connected")
    def delete(self):
        """Disconnect: the connection, its tokens and its busy copy are forgotten at once; a two-way
        subscription is deleted at Graph in the background"""
        service.disconnect(current_user_id())
        db.session.commit()
        return {"message": "Microsoft Calendar disconnected successfully"}


@blp.route("/settings")
class Settings(MethodView):
    @blp.login_required
    @blp.arguments(SettingsSchema)
    @blp.response(200, SettingsSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Microsoft Calendar not connected")
    def put(self, body):
        """Choose one-way (Callnfy → Outlook) or two-way sync"""
        sync_mode = service.update_sync_mode(current_user_id(), body["syncMode"])
        db.session.commit()
        return {"syncMode": sync_mode}


@blp.route("/sync-errors")
class SyncErrors(MethodView):
    @blp.login_required
    @blp.response(200, SyncErrorSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """Appointments whose push to Outlook failed (for good, or waiting for a retry), newest first"""
        items, total = calendar_push.failed_pushes(MICROSOFT_CALENDAR, current_user_id(),
                                                   offset=pagination_parameters.first_item,
                                                   limit=pagination_parameters.page_size)
        pagination_parameters.item_count = total
        return items

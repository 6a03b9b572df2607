"""HTTP surface of /integrations/google."""

from flask import redirect, request
from flask.views import MethodView

from ..api import Blueprint, MessageSchema
from ..auth import current_user_id
from . import service
from .schemas import AuthUrlSchema, SettingsSchema

blp = Blueprint("google", __name__, url_prefix="/integrations/google", description="Google Calendar connection")


@blp.route("/connect")
class Connect(MethodView):
    @blp.login_required
    @blp.response(200, AuthUrlSchema)
    def post(self):
        """Start connecting Google Calendar: the consent URL to open"""
        return {"authUrl": service.connect(current_user_id())}


@blp.route("/callback")
class Callback(MethodView):
    @blp.response(302)
    def get(self):
        """Google's redirect after consent (no JWT: the user is found by `state`); redirects to the app"""
        args = request.args
        return redirect(service.complete_authorization(args.get("state"), args.get("code"), args.get("error")))


@blp.route("/disconnect")
class Disconnect(MethodView):
    @blp.login_required
    @blp.response(200, MessageSchema)
    def delete(self):
        """Disconnect: forgotten at once; revoked at Google in the background"""
        service.disconnect(current_user_id())
        return {"message": "Google Calendar disconnected successfully"}


@blp.route("/settings")
class Settings(MethodView):
    @blp.login_required
    @blp.arguments(SettingsSchema)
    @blp.response(200, SettingsSchema)
    def put(self, body):
        """Choose one-way (Callnfy → Google) or two-way sync"""
        return {"syncMode": service.update_sync_mode(current_user_id(), body["syncMode"])}

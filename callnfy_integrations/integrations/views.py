"""HTTP surface of /integrations: parse, authorize, shape the envelope."""

from flask.views import MethodView

from ..api import Blueprint, no_store
from ..auth import current_user_id
from . import service
from .schemas import IntegrationStatusSchema

blp = Blueprint("integrations", __name__, url_prefix="/integrations",
                description="A user's Google Calendar and Zapier connections")


@blp.route("/status")
class IntegrationStatus(MethodView):
    @blp.login_required
    @no_store  # holds the Zapier API key
    @blp.response(200, IntegrationStatusSchema)
    def get(self):
        """Connection status of Google Calendar and Zapier"""
        return service.get_status(current_user_id())

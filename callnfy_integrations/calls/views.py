"""HTTP surface of /calls."""

from flask.views import MethodView

from .. import public_ids
from ..api import Blueprint
from ..auth import current_user_id
from ..extensions import db
from . import service
from .schemas import CallCreateSchema, CallSchema

blp = Blueprint("calls", __name__, url_prefix="/calls", description="Calls Callnfy answered")


@blp.route("")
class Calls(MethodView):
    @blp.login_required
    @blp.response(200, CallSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """List calls, newest first (page metadata in the X-Pagination header)"""
        items, total = service.list_calls(current_user_id(), offset=pagination_parameters.first_item,
                                          limit=pagination_parameters.page_size)
        pagination_parameters.item_count = total
        return items

    @blp.login_required
    @blp.arguments(CallCreateSchema)
    @blp.response(201, CallSchema)
    def post(self, body):
        """Record an answered call"""
        call = service.record_call(current_user_id(), **body)
        db.session.commit()
        return call


@blp.route("/<call_id>")
class CallById(MethodView):
    @blp.login_required
    @blp.response(200, CallSchema)
    def get(self, call_id):
        """One call"""
        return service.get_call(current_user_id(), public_ids.decode(public_ids.CALL, call_id))

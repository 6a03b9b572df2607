"""webhook deliveries: why a delivery was cancelled, as a code (a retry no longer reads the message)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:00:00

"""
from alembic import op
import sqlalchemy as sa

from callnfy_integrations import online_schema

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BACKFILL = """
    UPDATE webhook_deliveries SET cancel_reason = CASE
        WHEN last_error LIKE 'subscription disabled%' THEN 'subscription_disabled'
        WHEN last_error = 'API key revoked' THEN 'key_revoked'
        WHEN last_error = 'subscription deleted' THEN 'subscription_deleted'
        WHEN last_error = 'hook answered 410 Gone' THEN 'hook_gone' END
    WHERE id IN (SELECT id FROM webhook_deliveries
                 WHERE status = 'cancelled' AND cancel_reason IS NULL AND last_error IS NOT NULL LIMIT 5000)
"""


# This runs while the old release serves: a nullable column (a catalogue change), the old rows'
# codes read from their messages in batches of 5,000 (short row locks), then the CHECK added NOT VALID
# and validated (online_schema).
def upgrade():
    op.add_column("webhook_deliveries", sa.Column("cancel_reason", sa.String(length=32), nullable=True))
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        while bind.execute(sa.text(BACKFILL)).rowcount:
            pass
    online_schema.add_check_constraint(
        op.f("ck_webhook_deliveries_cancel_reason"), "webhook_deliveries",
        "cancel_reason IS NULL OR cancel_reason IN "
        "('key_revoked', 'subscription_deleted', 'subscription_disabled', 'hook_gone')")


def downgrade():
    op.drop_constraint(op.f("ck_webhook_deliveries_cancel_reason"), "webhook_deliveries", type_="check")
    op.drop_column("webhook_deliveries", "cancel_reason")

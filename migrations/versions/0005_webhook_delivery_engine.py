"""webhook delivery engine: in-flight claims, disabled subscriptions, retention scans

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    # In flight until this time (the lease); NULL when no attempt is running.
    op.add_column("webhook_deliveries", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_webhook_deliveries_in_flight", "webhook_deliveries", ["user_id", "claimed_until"],
                    unique=False, postgresql_where=sa.text("claimed_until IS NOT NULL"))
    op.create_index("ix_webhook_deliveries_finished", "webhook_deliveries", ["created_at"], unique=False,
                    postgresql_where=sa.text("status <> 'pending'"))
    op.create_index("ix_events_dispatched", "events", ["created_at"], unique=False,
                    postgresql_where=sa.text("dispatched_at IS NOT NULL"))
    op.add_column("zapier_subscriptions", sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("zapier_subscriptions", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("zapier_subscriptions", sa.Column("disabled_reason", sa.String(length=200), nullable=True))


def downgrade():
    op.drop_column("zapier_subscriptions", "disabled_reason")
    op.drop_column("zapier_subscriptions", "disabled_at")
    op.drop_column("zapier_subscriptions", "failing_since")
    op.drop_index("ix_events_dispatched", table_name="events", postgresql_where=sa.text("dispatched_at IS NOT NULL"))
    op.drop_index("ix_webhook_deliveries_finished", table_name="webhook_deliveries",
                  postgresql_where=sa.text("status <> 'pending'"))
    op.drop_index("ix_webhook_deliveries_in_flight", table_name="webhook_deliveries",
                  postgresql_where=sa.text("claimed_until IS NOT NULL"))
    op.drop_column("webhook_deliveries", "claimed_until")

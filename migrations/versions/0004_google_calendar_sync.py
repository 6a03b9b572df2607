"""google calendar one-way sync: per-appointment sync state, the calendar's time zone

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 08:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("appointments", sa.Column("google_sync_state", sa.String(length=16), nullable=True))
    op.add_column("appointments", sa.Column("google_sync_error", sa.String(length=500), nullable=True))
    op.add_column("appointments", sa.Column("google_sync_attempts", sa.Integer(), server_default="0",
                                            nullable=False))
    op.add_column("appointments", sa.Column("google_synced_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("appointments", sa.Column("google_next_sync_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        op.f("ck_appointments_google_sync_state"), "appointments",
        "google_sync_state IS NULL OR google_sync_state IN ('pending', 'synced', 'failed', 'off')")
    op.create_index("ix_appointments_google_sync_due", "appointments", ["google_next_sync_at"], unique=False,
                    postgresql_where=sa.text("google_next_sync_at IS NOT NULL"))
    op.add_column("integrations", sa.Column("calendar_time_zone", sa.String(length=64), nullable=True))


def downgrade():
    op.drop_column("integrations", "calendar_time_zone")
    op.drop_index("ix_appointments_google_sync_due", table_name="appointments",
                  postgresql_where=sa.text("google_next_sync_at IS NOT NULL"))
    op.drop_constraint(op.f("ck_appointments_google_sync_state"), "appointments", type_="check")
    op.drop_column("appointments", "google_next_sync_at")
    op.drop_column("appointments", "google_synced_at")
    op.drop_column("appointments", "google_sync_attempts")
    op.drop_column("appointments", "google_sync_error")
    op.drop_column("appointments", "google_sync_state")

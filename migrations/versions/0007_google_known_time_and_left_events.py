"""appointments: the event's time and update time as Google has them, and events left in Google on cancel

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    # Nullable columns without a default: a catalogue change only, no table rewrite or scan.
    op.add_column("appointments", sa.Column("google_start_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("appointments", sa.Column("google_duration", sa.Integer(), nullable=True))
    op.add_column("appointments", sa.Column("google_updated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("appointments", sa.Column("google_event_left", sa.Boolean(), nullable=True))


def downgrade():
    op.drop_column("appointments", "google_event_left")
    op.drop_column("appointments", "google_updated_at")
    op.drop_column("appointments", "google_duration")
    op.drop_column("appointments", "google_start_at")

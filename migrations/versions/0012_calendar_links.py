"""calendar_links: each appointment's state with each connected calendar, for every provider

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 10:00:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from callnfy_integrations import online_schema

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SOURCE = "ck_appointments_source"

# Expand, then contract later: this release reads and writes calendar_links only; the appointments'
# google_* columns stay, unread, until a later release drops them (with the trigger below).
#
# The old release keeps serving while this runs and until its dynos stop, and it still writes the
# google_* columns (a push's outcome, an appointment imported from Google). A trigger copies each such
# write into the link, so nothing the old release does in that window is lost; it is created in its
# own short transaction (a moment's lock) before the backfill, which only reads appointments.


def upgrade():
    op.create_table(
        "calendar_links",
        sa.Column("appointment_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("synced_version", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_id", sa.String(length=1024), nullable=True),
        sa.Column("etag", sa.String(length=255), nullable=True),
        sa.Column("remote_start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remote_duration", sa.Integer(), nullable=True),
        sa.Column("remote_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_left", sa.Boolean(), nullable=True),
        sa.CheckConstraint("provider IN ('google_calendar', 'microsoft_calendar')",
                           name=op.f("ck_calendar_links_provider")),
        sa.CheckConstraint("state IN ('pending', 'synced', 'failed', 'off')", name=op.f("ck_calendar_links_state")),
        sa.ForeignKeyConstraint(["appointment_id"], ["appointments.id"],
                                name=op.f("fk_calendar_links_appointment_id_appointments"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_calendar_links_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("appointment_id", "provider", name=op.f("pk_calendar_links")),
    )
    op.create_index("ix_calendar_links_user_id_provider_event_id", "calendar_links",
                    ["user_id", "provider", "event_id"], unique=True, postgresql_where="event_id IS NOT NULL")
    op.create_index("ix_calendar_links_user_id_provider", "calendar_links", ["user_id", "provider"])
    op.create_index("ix_calendar_links_next_sync_at", "calendar_links", ["next_sync_at"],
                    postgresql_where="next_sync_at IS NOT NULL")
    # Appointments imported from Outlook.
    op.drop_constraint(op.f(SOURCE), "appointments", type_="check")
    online_schema.add_check_constraint(op.f(SOURCE), "appointments", "source IN ('callnfy', 'google', 'microsoft')")
    with op.get_context().autocommit_block():
        op.execute("""
CREATE OR REPLACE FUNCTION calendar_links_from_google_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.google_sync_state IS NULL AND NEW.google_event_id IS NULL THEN
        RETURN NEW;
    END IF;
    INSERT INTO calendar_links (appointment_id, provider, user_id, state, synced_version, error, attempts,
                                synced_at, next_sync_at, event_id, etag, remote_start_at, remote_duration,
                                remote_updated_at, event_left)
    VALUES (NEW.id, 'google_calendar', NEW.user_id, coalesce(NEW.google_sync_state, 'synced'),
            NEW.google_synced_version, NEW.google_sync_error, NEW.google_sync_attempts, NEW.google_synced_at,
            NEW.google_next_sync_at, NEW.google_event_id, NEW.google_etag, NEW.google_start_at,
            NEW.google_duration, NEW.google_updated_at, NEW.google_event_left)
    ON CONFLICT (appointment_id, provider) DO UPDATE SET
        state = EXCLUDED.state, synced_version = EXCLUDED.synced_version, error = EXCLUDED.error,
        attempts = EXCLUDED.attempts, synced_at = EXCLUDED.synced_at, next_sync_at = EXCLUDED.next_sync_at,
        event_id = EXCLUDED.event_id, etag = EXCLUDED.etag, remote_start_at = EXCLUDED.remote_start_at,
        remote_duration = EXCLUDED.remote_duration, remote_updated_at = EXCLUDED.remote_updated_at,
        event_left = EXCLUDED.event_left;
    RETURN NEW;
END
$$
""")
        op.execute("""
CREATE TRIGGER appointments_google_columns_to_links
AFTER INSERT OR UPDATE OF google_event_id, google_etag, google_synced_version, google_sync_state,
    google_sync_error, google_sync_attempts, google_synced_at, google_next_sync_at, google_start_at,
    google_duration, google_updated_at, google_event_left
ON appointments FOR EACH ROW EXECUTE FUNCTION calendar_links_from_google_columns()
""")
    with op.get_context().autocommit_block():
        op.execute("""
INSERT INTO calendar_links (appointment_id, provider, user_id, state, synced_version, error, attempts, synced_at,
                            next_sync_at, event_id, etag, remote_start_at, remote_duration, remote_updated_at,
                            event_left)
SELECT id, 'google_calendar', user_id, coalesce(google_sync_state, 'synced'), google_synced_version,
       google_sync_error, google_sync_attempts, google_synced_at, google_next_sync_at, google_event_id, google_etag,
       google_start_at, google_duration, google_updated_at, google_event_left
FROM appointments
WHERE google_sync_state IS NOT NULL OR google_event_id IS NOT NULL
ON CONFLICT (appointment_id, provider) DO NOTHING
""")


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS appointments_google_columns_to_links ON appointments")
    op.execute("DROP FUNCTION IF EXISTS calendar_links_from_google_columns()")
    # What this release recorded goes back to the columns the previous one reads.
    op.execute("""
        UPDATE appointments a SET google_sync_state = l.state, google_synced_version = l.synced_version,
            google_sync_error = l.error, google_sync_attempts = l.attempts, google_synced_at = l.synced_at,
            google_next_sync_at = l.next_sync_at, google_event_id = l.event_id, google_etag = l.etag,
            google_start_at = l.remote_start_at, google_duration = l.remote_duration,
            google_updated_at = l.remote_updated_at, google_event_left = l.event_left
        FROM calendar_links l WHERE l.appointment_id = a.id AND l.provider = 'google_calendar'
    """)
    op.execute("DELETE FROM appointments WHERE source = 'microsoft'")
    op.drop_constraint(op.f(SOURCE), "appointments", type_="check")
    op.create_check_constraint(op.f(SOURCE), "appointments", "source IN ('callnfy', 'google')")
    op.drop_table("calendar_links")

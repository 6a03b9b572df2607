"""Response shapes of the integrations area."""

import marshmallow as ma

from ..timestamps import Timestamp


class GoogleCalendarStatusSchema(ma.Schema):
    connected = ma.fields.Boolean(required=True)
    email = ma.fields.String(allow_none=True)
    syncMode = ma.fields.String(allow_none=True, metadata={"enum": ["one-way", "two-way"]})
    lastSyncAt = Timestamp(allow_none=True)
    syncError = ma.fields.String(allow_none=True, metadata={
        "description": "Two-way sync: why the last sync from Google failed or skipped an event (null when fine)"})
    reauthorizationRequired = ma.fields.Boolean(
        metadata={"description": "Present and true when Google revoked access and the user must reconnect"})


class MicrosoftCalendarStatusSchema(GoogleCalendarStatusSchema):
    """The same fields as googleCalendar. Sync of appointments to Outlook is not built yet: `syncMode`
    is recorded as one-way, and `lastSyncAt` / `syncError` stay null."""

    syncError = ma.fields.String(allow_none=True, metadata={"description": "Null (sync to Outlook is not built yet)"})
    reauthorizationRequired = ma.fields.Boolean(
        metadata={"description": "Present and true when Microsoft refused the grant and the user must reconnect"})


class ZapierStatusSchema(ma.Schema):
    connected = ma.fields.Boolean(required=True)
    apiKey = ma.fields.String()
    webhookUrl = ma.fields.String()
    createdAt = Timestamp()


class IntegrationStatusSchema(ma.Schema):
    googleCalendar = ma.fields.Nested(GoogleCalendarStatusSchema, required=True)
    microsoftCalendar = ma.fields.Nested(MicrosoftCalendarStatusSchema, required=True)
    zapier = ma.fields.Nested(ZapierStatusSchema, required=True)

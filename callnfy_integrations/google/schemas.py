"""Request and response shapes of /integrations/google."""

import marshmallow as ma


class AuthUrlSchema(ma.Schema):
    authUrl = ma.fields.String()


class SettingsSchema(ma.Schema):
    # Any value reaches the service, which answers every bad one with the contract's message.
    syncMode = ma.fields.Raw(load_default=None, metadata={"type": "string", "enum": ["one-way", "two-way"]})

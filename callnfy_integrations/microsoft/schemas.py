"""Request and response shapes of /integrations/microsoft (the same as Google's)."""

from ..google.schemas import AuthUrlSchema, SettingsSchema

__all__ = ["AuthUrlSchema", "SettingsSchema"]

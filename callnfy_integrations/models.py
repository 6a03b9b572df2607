"""Every table of the service, imported together so the metadata (and Alembic) sees them all."""

from .integrations.models import Integration  # noqa: F401
from .users.models import User  # noqa: F401

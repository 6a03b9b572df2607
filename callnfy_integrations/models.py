"""Every table of the service, imported together so the metadata (and Alembic) sees them all."""

from .appointments.models import Appointment  # noqa: F401
from .availability.models import AvailabilitySettings, BusyBlock, BusySource, Hold  # noqa: F401
from .calendar_sync.models import CalendarLink  # noqa: F401
from .calls.models import Call  # noqa: F401
from .customers.models import Customer  # noqa: F401
from .events.models import Event, EventHandlerRun  # noqa: F401
from .integrations.models import Integration  # noqa: F401
from .users.models import User  # noqa: F401
from .zapier.models import WebhookAttempt, WebhookDelivery, ZapierSubscription  # noqa: F401

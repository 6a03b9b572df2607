"""Failed X-Callnfy-Key checks, counted per (client address, account) and per client address.

Only failures count; once either window is full, requests are refused with 429 before any key check.
Per (address, account) with the lower limit: Zapier calls from shared addresses, and one tenant's
broken Zap must not lock every other tenant out. Per address as well, with a higher limit: the
account is the user id in the path, which the caller chooses, so without it one address could
rotate user ids for unlimited guesses. Nothing here runs on other routes.
"""

from __future__ import annotations

from ..errors import ApiError
from ..limiters import FailureLimit


class TooManyFailures(ApiError):
    status = 429
    code = "TOO_MANY_REQUESTS"
    message = "Too many failed key checks; try again later"


PER_ACCOUNT = FailureLimit("zapier-key-failures", "ZAPIER_AUTH_FAILURE_LIMIT", TooManyFailures)
PER_ADDRESS = FailureLimit("zapier-key-failures-address", "ZAPIER_AUTH_ADDRESS_FAILURE_LIMIT", TooManyFailures)


def ensure_allowed(address: str, account: str) -> None:
    PER_ADDRESS.ensure_allowed(address)
    PER_ACCOUNT.ensure_allowed(f"{address}|{account[:64]}")


def record_failure(address: str, account: str) -> None:
    PER_ADDRESS.record_failure(address)
    PER_ACCOUNT.record_failure(f"{address}|{account[:64]}")

"""Work that must happen only after the current transaction commits, and never if it rolls back."""

from __future__ import annotations

import logging
from typing import Any, Callable

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from .extensions import db

log = logging.getLogger(__name__)

_KEY = "callnfy_after_commit"


def after_commit(group: Callable[[list[Any]], None], item: Any) -> None:
    """Collect `item`; once the session's transaction commits, call `group(items)` once per group."""
    db.session.info.setdefault(_KEY, {}).setdefault(group, []).append(item)


@sa_event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for group, items in session.info.pop(_KEY, {}).items():
        try:
            group(items)
        except Exception:  # committed already: a failure here must not turn into a failed request
            log.exception("after-commit work failed", extra={"callback": getattr(group, "__name__", group)})


@sa_event.listens_for(Session, "after_rollback")
def _discard_on_rollback(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_KEY, None)

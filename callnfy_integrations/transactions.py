"""Work that must happen only after the current transaction commits, and never if it rolls back.

Items are remembered with the (sub)transaction that was innermost when they were added: rolling
back a savepoint (a failed outbox handler, say) forgets what was added inside it, so a doorbell is
never rung for rows that were never committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

from .extensions import db

log = logging.getLogger(__name__)

_KEY = "callnfy_after_commit"


def after_commit(group: Callable[[list[Any]], None], item: Any) -> None:
    """Collect `item`; once the session's transaction commits, call `group(items)` once per group."""
    session = db.session()
    owner = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_KEY, []).append((owner, group, item))


def _inside(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    if transaction is None:  # added before the session began: it belongs to the outermost transaction
        return ancestor.parent is None
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


@sa_event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    groups: dict[Callable, list[Any]] = {}
    for _, group, item in session.info.pop(_KEY, []):
        groups.setdefault(group, []).append(item)
    for group, items in groups.items():
        try:
            group(items)
        except Exception:  # committed already: a failure here must not turn into a failed request
            log.exception("after-commit work failed", extra={"callback": getattr(group, "__name__", group)})


@sa_event.listens_for(Session, "after_soft_rollback")
def _discard_on_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_KEY)
    if not pending:
        return
    kept = [entry for entry in pending if not _inside(entry[0], previous_transaction)]
    if kept:
        session.info[_KEY] = kept
    else:
        session.info.pop(_KEY, None)

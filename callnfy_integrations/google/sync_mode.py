"""Sync-mode hooks: the two-way sync area registers what happens when a user switches modes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

SyncModeHook = Callable[[uuid.UUID, str, str], None]  # (integration id, old mode, new mode)

_hooks: list[SyncModeHook] = []


def on_sync_mode_change(hook: SyncModeHook) -> SyncModeHook:
    """Register a hook; it runs in the settings transaction, before commit."""
    _hooks.append(hook)
    return hook


def sync_mode_changed(integration_id: uuid.UUID, old: str, new: str) -> None:
    for hook in _hooks:
        hook(integration_id, old, new)

"""One way to make a QAction: text, shortcut(s), checkable, tips and its slot, in one call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence


def make_action(parent: QObject, text: str, slot: Callable[..., object] | None = None, shortcut: Any = None,
                checkable: bool = False, tip: str = "") -> QAction:
    """A QAction of ``parent``: shortcut(s), checkable, tool and status tip, and its slot connected."""
    action = QAction(text, parent)
    if shortcut is not None:
        if isinstance(shortcut, (list, tuple)):
            action.setShortcuts([QKeySequence(s) for s in shortcut])
        else:
            action.setShortcut(QKeySequence(shortcut))
    action.setCheckable(checkable)
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    if slot is not None:
        (action.toggled if checkable else action.triggered).connect(slot)
    return action

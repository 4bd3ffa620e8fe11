"""Undo and redo of a slide's annotations, over immutable snapshots (no Qt).

Import the public names from :mod:`chaoyang_desktop.core.slide.annotations`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from chaoyang_desktop.core.slide.annotation_model import Annotation

#: Undo steps :class:`AnnotationHistory` keeps by default.
HISTORY_LIMIT = 200


class AnnotationHistory:
    """The annotations of a slide with undo and redo over immutable snapshots.

    Each change records the state before it and a label ("Move annotation"), so undo restores
    a snapshot instead of inverting an edit. At most ``limit`` steps are kept. ``listeners`` are
    plain callables run after every change (the GUI connects its repaint; no Qt here).
    """

    def __init__(self, state: Iterable[Annotation] = (), limit: int = HISTORY_LIMIT) -> None:
        if limit < 1:
            raise ValueError("the history must keep at least one step")
        self.limit = limit
        self.listeners: list[Callable[[], None]] = []
        self._state: tuple[Annotation, ...] = _checked(state)
        self._undo: list[tuple[tuple[Annotation, ...], str]] = []
        self._redo: list[tuple[tuple[Annotation, ...], str]] = []

    @property
    def state(self) -> tuple[Annotation, ...]:
        return self._state

    def reset(self, state: Iterable[Annotation] = ()) -> None:
        """Start over from ``state`` with nothing to undo or redo (e.g. another slide opened)."""
        self._state = _checked(state)
        self._undo.clear()
        self._redo.clear()
        self._notify()

    def apply(self, new_state: Iterable[Annotation], label: str) -> None:
        """Make ``new_state`` current as one undo step called ``label``; clears redo.

        A state of the very same annotations, in the same order, records nothing.

        Raises:
            ValueError: Two annotations share a uid.
        """
        new = _checked(new_state)
        if len(new) == len(self._state) and all(a is b for a, b in zip(new, self._state)):
            return
        self._undo.append((self._state, label))
        del self._undo[: -self.limit]
        self._redo.clear()
        self._state = new
        self._notify()

    def add(self, annotation: Annotation, label: str = "Add annotation") -> None:
        self.apply((*self._state, annotation), label)

    def replace(self, annotation: Annotation, label: str) -> None:
        """Put ``annotation`` in the place of the one with its uid.

        Raises:
            KeyError: No annotation has that uid.
        """
        if self.by_uid(annotation.uid) is None:
            raise KeyError(annotation.uid)
        self.apply(tuple(annotation if a.uid == annotation.uid else a for a in self._state), label)

    def remove(self, uids: Iterable[str], label: str) -> None:
        """Remove the annotations with these uids (unknown ones are ignored)."""
        gone = {uids} if isinstance(uids, str) else set(uids)
        self.apply(tuple(a for a in self._state if a.uid not in gone), label)

    def undo(self) -> str | None:
        """Go back one step; its label, or None when there is nothing to undo."""
        if not self._undo:
            return None
        previous, label = self._undo.pop()
        self._redo.append((self._state, label))
        self._state = previous
        self._notify()
        return label

    def redo(self) -> str | None:
        """Redo the last undone step; its label, or None when there is nothing to redo."""
        if not self._redo:
            return None
        following, label = self._redo.pop()
        self._undo.append((self._state, label))
        self._state = following
        self._notify()
        return label

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_label(self) -> str | None:
        return self._undo[-1][1] if self._undo else None

    @property
    def redo_label(self) -> str | None:
        return self._redo[-1][1] if self._redo else None

    def by_uid(self, uid: str) -> Annotation | None:
        return next((a for a in self._state if a.uid == uid), None)

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener()


def _checked(state: Iterable[Annotation]) -> tuple[Annotation, ...]:
    snapshot = tuple(state)
    uids = [a.uid for a in snapshot]
    if len(set(uids)) != len(uids):
        raise ValueError("two annotations share a uid; give the copy a new one (dataclasses.replace(a, uid=...))")
    return snapshot

"""A folder of per-slide files in the user's data folder, keyed by the slide's content fingerprint.

Not by path: a slide that is moved or renamed keeps what was saved for it, and no file name
(which may identify a patient) is written. Reading or writing never fails the caller: an
unreadable file reads as nothing, a failed write is logged, and the data lasts for the session.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Generic, TypeVar

from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.core.paths import user_data_dir

log = logging.getLogger(__name__)

T = TypeVar("T")


class SlideStore(ABC, Generic[T]):
    """Load and save a list of items per slide, one file each, written atomically."""

    #: The sub-folder of the user's data folder, the file suffix, and what the items are called.
    folder: str
    suffix: str
    what: str

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else user_data_dir() / self.folder

    def _file(self, fingerprint: str) -> Path:
        # Alphanumeric only: the key becomes a file name and must never walk out of the folder.
        if not fingerprint.isalnum():
            raise ValueError(f"not a slide fingerprint: {fingerprint!r}")
        return self.root / f"{fingerprint}{self.suffix}"

    @abstractmethod
    def _read(self, path: Path) -> list[T]:
        """The items of an existing file (raising on anything unreadable)."""

    @abstractmethod
    def _write(self, path: Path, items: Sequence[T]) -> None:
        """Write the items atomically."""

    def load(self, fingerprint: str) -> list[T]:
        """The slide's items in the saved order; none when there is no readable file."""
        path = self._file(fingerprint)
        if not path.is_file():
            return []
        try:
            return self._read(path)
        except (OSError, ValueError, TypeError, RecursionError, ChaoyangError) as exc:
            log.warning("Ignoring the unreadable %s file %s: %s", self.what, path, exc)
            return []

    def save(self, fingerprint: str, items: Sequence[T]) -> None:
        """Replace the slide's items; a failure to write costs only their memory across sessions."""
        path = self._file(fingerprint)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._write(path, items)
        except (OSError, ValueError, TypeError, ChaoyangError) as exc:
            log.warning("Could not save the %s of this slide (%s); they last for this session only.", self.what, exc)

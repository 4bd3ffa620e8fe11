"""The exceptions the engine raises on bad input.

Each one carries a message meant for a person: what went wrong and what to do next. The CLI
prints the message without a traceback; the GUI shows it in a dialog. Each subclass also
inherits the matching builtin so callers can catch ``OSError`` or ``ValueError`` as usual.
"""

from __future__ import annotations


class ChaoyangError(Exception):
    """Base class of every error the engine reports to a person."""


class ModelNotFoundError(ChaoyangError, FileNotFoundError):
    """The model is neither a local directory nor in the Hugging Face cache, and cannot be fetched."""


class CheckpointError(ChaoyangError, ValueError):
    """A checkpoint is malformed: wrong layout, missing/extra/mis-shaped tensors, unsafe pickle."""


class ImageDecodeError(ChaoyangError, ValueError):
    """An image file cannot be decoded, or has a mode we refuse."""


class ImageTooLargeError(ChaoyangError, ValueError):
    """An image is too big to decode safely into memory."""


class SlideOpenError(ChaoyangError, OSError):
    """A slide cannot be opened by any reader."""


class MissingPixelSizeError(ChaoyangError, ValueError):
    """A whole-slide image has no pixel size and none was given with ``--mpp``."""


class RoiError(ChaoyangError, ValueError):
    """A region-of-interest file cannot be read or holds no polygon."""


class AnnotationError(ChaoyangError, ValueError):
    """An annotation has no area, an edit would leave it without one, or an annotation file is unusable."""


class SettingsError(ChaoyangError, ValueError):
    """An analysis or inference setting is out of range or inconsistent."""


class OutputError(ChaoyangError, OSError):
    """An output cannot be written (read-only or missing folder, full disk)."""


class SavedResultError(ChaoyangError, ValueError):
    """A results folder lacks ``predictions.npz``/``summary.json``, or they are unreadable or disagree."""


class NoTilesError(ChaoyangError, ValueError):
    """The plan keeps no tile: the slide is smaller than a tile, the region lies outside it, or no tissue is found."""


class OutOfDomainError(ChaoyangError, ValueError):
    """The domain check found the slide outside what the model can judge (``check`` says why).

    The message is the findings; front ends add how to analyse it anyway.
    """

    def __init__(self, message: str, check: object) -> None:
        super().__init__(message)
        self.check = check


class CancelledError(ChaoyangError):
    """A long job was cancelled by the user; partial work is kept where it can be resumed."""

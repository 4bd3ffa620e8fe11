"""Reading a GeoJSON file (a QuPath export) into parsed JSON, with one-line errors that say what to do."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chaoyang_desktop.core.errors import ChaoyangError

HINT = "give a GeoJSON file, e.g. from QuPath's File > Export objects as GeoJSON."


def read_geojson_file(path: str | os.PathLike[str], error: type[ChaoyangError], what: str) -> Any:
    """The parsed JSON of ``path``; ``error`` (naming ``what``, e.g. "ROI") for anything unreadable."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")  # some Windows tools write a BOM
    except FileNotFoundError as exc:
        raise error(f"The {what} file {p} does not exist; choose another file.") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{p.name} is not a UTF-8 text file; {HINT}") from exc
    except OSError as exc:
        raise error(f"Cannot read the {what} file {p} ({exc.strerror or exc}); choose another file.") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{p.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); {HINT}") from exc

"""The results cache: analyses keyed by slide content, model and settings.

Analysing the same slide again with the same model and settings loads the stored result at
once; an interrupted run (cancelled, closed, crashed) left its partial result there and resumes
from the tiles still pending. Entries are the ``predictions.npz`` + ``summary.json`` pair that
``analyze`` writes, saved atomically, so a crash mid-save leaves the previous checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path

from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.core.paths import results_cache_dir
from chaoyang_desktop.core.analysis.results import AnalysisResult, Provenance

log = logging.getLogger(__name__)

# Bumped whenever a change to the engine would change predictions for the same key.
# 2: tiles are resized with cv2.resize itself (training's function), no longer a torch look-alike.
# 3: tile quality control, test-time augmentation and temperature joined the key.
CACHE_SCHEMA = 3


def cache_key(result_or_plan_provenance: object) -> str:
    """A digest of everything that determines the predictions (not the time or the path)."""
    p = result_or_plan_provenance
    parts = {
        "schema": CACHE_SCHEMA,
        "slide": getattr(p, "slide_fingerprint"),
        "weights": getattr(p, "weights_sha256"),
        "classes": list(getattr(p, "class_names")),
        "channel_order": getattr(p, "channel_order"),
        "resize": getattr(p, "resize"),
        "mpp": round(float(getattr(p, "mpp")), 6),
        "tile_um": round(float(getattr(p, "tile_um")), 4),
        "stride_um": round(float(getattr(p, "stride_um")), 4),
        "tile_px": getattr(p, "tile_px"),
        "input_size": getattr(p, "input_size"),
        "tissue_threshold": round(float(getattr(p, "tissue_threshold")), 6),
        "roi": getattr(p, "roi_digest", None),
        # Which tiles are classified, and how their probabilities are made.
        "qc": getattr(p, "qc_version", None) if getattr(p, "qc", False) else None,
        "tta": bool(getattr(p, "tta", False)),
        "temperature": round(float(getattr(p, "temperature", 1.0)), 6),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def name_for_this_run(result: AnalysisResult, run: Provenance) -> None:
    """Give a result read from the cache the names of the run reading it (in place).

    The cache stores no file names (:meth:`ResultCache.save`), so outputs must name the slide and
    region file analysed now, say whether this run overrode the domain check, and name its own
    calibration file. ``run`` is that run's plan provenance.
    """
    result.provenance = dataclasses.replace(
        result.provenance, slide_path=run.slide_path, roi_path=run.roi_path, domain_check=run.domain_check,
        calibration=run.calibration)


class ResultCache:
    """A folder of cached analyses, one sub-folder per key."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else results_cache_dir()

    def entry(self, key: str) -> Path:
        return self.root / key

    def load(self, key: str) -> AnalysisResult | None:
        """The stored result for ``key``, or None when absent or unreadable (then it is dropped)."""
        from chaoyang_desktop.core.analysis.result_files import load_result_dir

        folder = self.entry(key)
        if not (folder / "predictions.npz").is_file():
            return None
        try:
            return load_result_dir(folder)
        except ChaoyangError as exc:  # load_result_dir turns every read failure into one
            log.warning("Dropping unreadable cache entry %s: %s", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
            return None

    def save(self, key: str, result: AnalysisResult) -> None:
        """Store ``result`` (complete or partial); failures to write only cost the cache."""
        from chaoyang_desktop.core.analysis.result_files import write_predictions_npz, write_summary_json

        folder = self.entry(key)
        # No file names in the cache: a renamed (de-identified) slide must not bring its old name
        # back into new outputs. The loader fills in the names of the run that reads the entry.
        anonymous = dataclasses.replace(result, provenance=dataclasses.replace(
            result.provenance, slide_path="", roi_path=None, domain_check=None))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_predictions_npz(anonymous, folder / "predictions.npz")
            write_summary_json(anonymous, folder / "summary.json")
        except (ChaoyangError, OSError) as exc:
            log.warning("Could not save to the results cache (%s); the analysis itself is unaffected.", exc)

    def complete_keys(self) -> set[str]:
        """The keys whose stored result is complete with no failed tile: those a run takes as they are."""
        keys = set()
        for folder in self.root.glob("*/summary.json"):
            try:
                tiles = json.loads(folder.read_text(encoding="utf-8"))["analysis"]["tiles"]
                if int(tiles.get("pending", 1)) == 0 and int(tiles.get("failed", 1)) == 0:
                    keys.add(folder.parent.name)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # unreadable: load() drops it when a run asks for it
        return keys

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

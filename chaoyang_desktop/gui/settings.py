"""The app's persistent settings, stored with QSettings.

:class:`AppSettings` wraps one ``QSettings`` that the caller injects: the app passes the user's
store, tests pass an ini file in a temporary folder, so a test never reads or writes the
user's settings. Values are typed and validated on the way in and out; a damaged value falls
back to its default instead of breaking start-up. The model and analysis requests the worker
runs are built from here (:meth:`model_request`, :meth:`analysis_request`), so the dialog, the
worker and ``view`` agree on one source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSettings

from chaoyang_desktop.gui.analysis_worker import AnalysisRequest, ModelRequest

if TYPE_CHECKING:
    from chaoyang_desktop.core.cluster.events import ClusterSettings
    from chaoyang_desktop.core.slide.roi import Roi

ORGANIZATION = "Chaoyang"
APPLICATION = "Chaoyang Desktop"
MAX_RECENT = 10

DEFAULTS: dict[str, Any] = {
    "model/spec": "",
    "engine/device": "auto",
    "engine/precision": "auto",
    "engine/batch_size": 16,
    "engine/threads": 0,
    "engine/channel_order": "",
    "engine/resize": "",
    "engine/tta": False,
    # A temperature file (evaluate's "Fit Temperature"); empty: uncalibrated.
    "engine/calibration": "",
    "analysis/tile_um": 0.0,
    "analysis/stride_um": 0.0,
    "analysis/tissue_threshold": 0.25,
    "analysis/workers": 4,
    "analysis/qc": True,
    "overlay/opacity": 0.4,
    "overlay/alpha_by_confidence": True,
    "overlay/min_confidence": 0.0,
    "ui/confirm_analysis": True,
    # Opening another slide or quitting during an analysis asks before stopping it.
    "ui/ask_before_stopping_a_run": True,
    "ui/classify_patches_on_open": True,
    # Where the cohort window sends its slides: this computer's worker, or a Ray cluster.
    "cohort/run_on": "local",
    # "local" starts Ray on this computer for the run; "auto" joins the cluster this computer is in.
    "cluster/ray_address": "local",
    "cluster/cpus_per_worker": 1,
}


def user_settings() -> QSettings:
    """The user's store (ini format everywhere, so it is a readable file)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, "chaoyang-desktop")


class AppSettings:
    """Typed access to one QSettings store."""

    def __init__(self, store: QSettings) -> None:
        self.store = store

    # ----- typed primitives ------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        default = DEFAULTS[key]
        raw = self.store.value(key, default)
        try:
            if isinstance(default, bool):
                return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
            if isinstance(default, int):
                return int(raw)
            if isinstance(default, float):
                return float(raw)
            return "" if raw is None else str(raw)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value: Any) -> None:
        if key not in DEFAULTS:
            raise KeyError(key)
        self.store.setValue(key, value)

    def sync(self) -> None:
        self.store.sync()

    # ----- model and engine -----------------------------------------------------------------------------
    @property
    def model_spec(self) -> str | None:
        return self.get("model/spec") or None

    def model_request(self, spec: str | None = None) -> ModelRequest:
        """The model (``spec``, else the stored one, else the default) and the inference settings."""
        threads = self.get("engine/threads")
        return ModelRequest(
            spec=spec or self.model_spec,
            device=self.get("engine/device") or "auto",
            precision=self.get("engine/precision") or "auto",
            batch_size=max(1, self.get("engine/batch_size")),
            threads=threads if threads > 0 else None,
            channel_order=self.get("engine/channel_order") or None,
            resize=self.get("engine/resize") or None,
            tta=bool(self.get("engine/tta")),
            calibration=self.get("engine/calibration") or None,
        )

    def analysis_request(self, roi: Roi | None = None, *, tile_um: float | None = None,
                         stride_um: float | None = None, tissue_threshold: float | None = None) -> AnalysisRequest:
        """The analysis settings of the store; keyword arguments override them (``view`` options)."""
        tile = tile_um if tile_um is not None else (self.get("analysis/tile_um") or None)
        stride = stride_um if stride_um is not None else (self.get("analysis/stride_um") or None)
        thr = tissue_threshold if tissue_threshold is not None else self.get("analysis/tissue_threshold")
        return AnalysisRequest(tile_um=tile, stride_um=stride, tissue_threshold=float(thr), roi=roi,
                               workers=max(1, self.get("analysis/workers")), qc=bool(self.get("analysis/qc")))

    def cluster_settings(self) -> ClusterSettings:
        """Where a cohort runs on Ray (raises :class:`SettingsError` for an empty address)."""
        from chaoyang_desktop.core.cluster.events import ClusterSettings

        return ClusterSettings(address=self.get("cluster/ray_address").strip(),
                               cpus_per_worker=self.get("cluster/cpus_per_worker"))

    # ----- class colours --------------------------------------------------------------------------------
    def class_color(self, name: str, default: str) -> str:
        value = self.store.value(f"colors/{name}", default)
        text = str(value) if value else default
        return text if text.startswith("#") and len(text) in (4, 7) else default

    def set_class_color(self, name: str, color: str | None) -> None:
        if color is None:
            self.store.remove(f"colors/{name}")
        else:
            self.store.setValue(f"colors/{name}", color)

    def class_colors(self, names: tuple[str, ...], defaults: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.class_color(n, d) for n, d in zip(names, defaults))

    # ----- recent files -----------------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        raw = self.store.value("ui/recent_files", [])
        if isinstance(raw, str):
            raw = [raw] if raw else []
        return [str(p) for p in (raw or [])][:MAX_RECENT]

    def add_recent_file(self, path: str) -> list[str]:
        items = [path] + [p for p in self.recent_files() if p != path]
        self.store.setValue("ui/recent_files", items[:MAX_RECENT])
        return items[:MAX_RECENT]

    def clear_recent_files(self) -> None:
        self.store.setValue("ui/recent_files", [])

    # ----- window layout --------------------------------------------------------------------------------
    def window_state(self) -> tuple[QByteArray | None, QByteArray | None]:
        geometry = self.store.value("ui/geometry")
        state = self.store.value("ui/window_state")
        return (geometry if isinstance(geometry, QByteArray) else None,
                state if isinstance(state, QByteArray) else None)

    def set_window_state(self, geometry: QByteArray, state: QByteArray) -> None:
        self.store.setValue("ui/geometry", geometry)
        self.store.setValue("ui/window_state", state)

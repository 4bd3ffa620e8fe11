"""What an analysis produces: per-tile predictions, the heatmap grid, the summary and provenance.

One :class:`AnalysisResult` is filled batch by batch by the pipeline, shown live by the GUI,
written by the exporters and stored in the cache. The summary numbers (tile counts, areas,
percentages, mean confidences) come from :meth:`AnalysisResult.summary` only, so the CLI,
the GUI panel, ``summary.json`` and the report agree to the digit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chaoyang_desktop.core.slide.tile_qc import count_by_reason
from chaoyang_desktop.core.slide.tiling import GridSpec

TILE_PENDING = 0
TILE_DONE = 1
TILE_FAILED = 2
#: Left out by quality control (glass, pen, blur, dark); ``qc`` says why. Never classified.
TILE_QC = 3

#: A tile or heatmap cell whose top-1 minus top-2 probability is below this is *unsure*: the
#: model's first and second choices are within 0.2 of each other (for example 0.55 against 0.35).
UNSURE_MARGIN = 0.2


def entropy_of(probs: np.ndarray) -> np.ndarray:
    """Normalised entropy of each row, in [0, 1]: 0 for one class at 1, 1 for all classes equal.

    Shannon entropy in nats divided by ``ln C``, so the value reads the same for any number of
    classes. NaN rows stay NaN.
    """
    p = np.asarray(probs, dtype=np.float64)
    c = p.shape[-1]
    if c < 2:
        return np.zeros(p.shape[:-1], dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    h: np.ndarray = np.clip(-terms.sum(axis=-1) / np.log(c), 0.0, 1.0).astype(np.float32)
    h[np.isnan(p).any(axis=-1)] = np.nan
    return h


def margin_of(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability of each row, in [0, 1]; NaN rows stay NaN."""
    p = np.asarray(probs, dtype=np.float32)
    if p.shape[-1] < 2:
        return np.where(np.isnan(p[..., 0]), np.nan, 1.0).astype(np.float32)
    top2 = np.sort(p, axis=-1)[..., -2:]
    return (top2[..., 1] - top2[..., 0]).astype(np.float32)


@dataclass(frozen=True)
class Provenance:
    """Everything needed to say how a result was made and to recognise it again."""

    slide_path: str
    slide_fingerprint: str
    l0_width: int
    l0_height: int
    mpp: float
    mpp_assumed: bool
    vendor: str
    objective_power: float | None
    model_id: str
    weights_sha256: str
    class_names: tuple[str, ...]
    class_colors: tuple[str, ...]
    channel_order: str
    resize: str
    tile_um: float
    stride_um: float
    tile_px: int
    input_size: int
    tissue_threshold: float
    roi_path: str | None
    software_version: str
    created: str
    roi_digest: str | None = None
    #: :meth:`DomainCheck.to_dict` of the slide, with whether it was overridden.
    domain_check: dict[str, Any] | None = None
    #: Whether tile quality control left flagged tiles out, and the version of its rules.
    qc: bool = False
    qc_version: int | None = None
    #: Test-time augmentation (eight orientations averaged).
    tta: bool = False
    #: The logits' divisor (temperature scaling); 1 means uncalibrated.
    temperature: float = 1.0
    #: The temperature file it came from, if any.
    calibration: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["class_names"] = list(self.class_names)
        d["class_colors"] = list(self.class_colors)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Provenance:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["class_names"] = tuple(kw["class_names"])
        kw["class_colors"] = tuple(kw["class_colors"])
        return cls(**kw)


@dataclass(frozen=True, eq=False)
class TileState:
    """Copies of a result's per-tile arrays: what crosses between threads and into exports.

    The GUI's worker sends these with a plan (the plan holds everything else of a result), so
    the receiving side can rebuild the result with :meth:`applied_to`.
    """

    probs: np.ndarray
    status: np.ndarray
    errors: dict[int, str]
    qc: np.ndarray
    spread: np.ndarray | None = None

    @classmethod
    def of(cls, result: AnalysisResult) -> TileState:
        return cls(result.probs.copy(), result.status.copy(), dict(result.errors), result.qc.copy(),
                   None if result.spread is None else result.spread.copy())

    def applied_to(self, result: AnalysisResult) -> AnalysisResult:
        """``result`` (an empty result of the same plan) with these arrays, as copies."""
        return dataclasses.replace(
            result, probs=np.array(self.probs, dtype=np.float32, copy=True),
            status=np.array(self.status, dtype=np.uint8, copy=True), errors=dict(self.errors),
            qc=np.array(self.qc, dtype=np.uint8, copy=True),
            spread=None if self.spread is None else np.array(self.spread, dtype=np.float32, copy=True))

    def copy_into(self, result: AnalysisResult) -> None:
        """Overwrite ``result``'s arrays in place (views sharing them see the change)."""
        result.probs[...] = self.probs
        result.status[...] = self.status
        result.qc[...] = self.qc
        result.errors = dict(self.errors)
        if self.spread is not None and result.spread is not None:
            result.spread[...] = self.spread


@dataclass
class AnalysisResult:
    """Predictions of one slide with one model and one set of settings.

    Per-tile arrays share the tile index ``i`` (length N, only tiles kept after tissue and ROI
    filtering). ``probs[i]`` is NaN until tile ``i`` is done. ``qc[i]`` holds the quality-control
    bits of :mod:`chaoyang_desktop.core.slide.tile_qc` (0: passed or not checked); a flagged tile
    has status :data:`TILE_QC`. ``spread`` is the per-class standard deviation across the
    test-time views (None without TTA).
    """

    provenance: Provenance
    grid: GridSpec
    t_col: np.ndarray
    t_row: np.ndarray
    tissue: np.ndarray
    probs: np.ndarray
    status: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)
    qc: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint8))
    spread: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.qc) != len(self.t_col):
            self.qc = np.zeros(len(self.t_col), dtype=np.uint8)

    @classmethod
    def empty(
        cls, provenance: Provenance, grid: GridSpec, t_col: np.ndarray, t_row: np.ndarray, tissue: np.ndarray,
        qc: np.ndarray | None = None,
    ) -> AnalysisResult:
        """A result with every tile pending, except those ``qc`` flags (status :data:`TILE_QC`)."""
        n = len(t_col)
        c = len(provenance.class_names)
        flags = np.zeros(n, dtype=np.uint8) if qc is None else np.asarray(qc, dtype=np.uint8).copy()
        status = np.where(flags != 0, TILE_QC, TILE_PENDING).astype(np.uint8)
        return cls(
            provenance=provenance,
            grid=grid,
            t_col=np.asarray(t_col, dtype=np.int32),
            t_row=np.asarray(t_row, dtype=np.int32),
            tissue=np.asarray(tissue, dtype=np.float32),
            probs=np.full((n, c), np.nan, dtype=np.float32),
            status=status,
            qc=flags,
            spread=np.full((n, c), np.nan, dtype=np.float32) if provenance.tta else None,
        )

    # ----- per-tile views -------------------------------------------------------------------
    @property
    def class_names(self) -> tuple[str, ...]:
        return self.provenance.class_names

    @property
    def n_tiles(self) -> int:
        return len(self.t_col)

    @property
    def n_done(self) -> int:
        return int(np.count_nonzero(self.status == TILE_DONE))

    @property
    def n_failed(self) -> int:
        return int(np.count_nonzero(self.status == TILE_FAILED))

    @property
    def n_qc(self) -> int:
        """Tiles left out by quality control."""
        return int(np.count_nonzero(self.status == TILE_QC))

    @property
    def complete(self) -> bool:
        return not bool(np.any(self.status == TILE_PENDING))

    def to_classify(self) -> np.ndarray:
        """Indices of the tiles a run still has to classify: pending, and failed ones again."""
        return np.flatnonzero((self.status == TILE_PENDING) | (self.status == TILE_FAILED))

    def rects(self) -> np.ndarray:
        """Level-0 ``(x, y, w, h)`` of every tile, clipped to the slide."""
        return self.grid.tile_rects(self.t_col, self.t_row)

    def labels(self) -> np.ndarray:
        """Top class index per tile; -1 where the tile is not done."""
        out = np.full(self.n_tiles, -1, dtype=np.int64)
        done = self.status == TILE_DONE
        if np.any(done):
            out[done] = np.argmax(self.probs[done], axis=1)
        return out

    def confidences(self) -> np.ndarray:
        """Top-class probability per tile; NaN where the tile is not done."""
        out = np.full(self.n_tiles, np.nan, dtype=np.float32)
        done = self.status == TILE_DONE
        if np.any(done):
            out[done] = np.max(self.probs[done], axis=1)
        return out

    def entropy(self) -> np.ndarray:
        """Normalised entropy per tile (:func:`entropy_of`); NaN where the tile is not done."""
        return entropy_of(self.probs)

    def margin(self) -> np.ndarray:
        """Top-1 minus top-2 probability per tile (:func:`margin_of`); NaN where the tile is not done."""
        return margin_of(self.probs)

    def top_spread(self) -> np.ndarray | None:
        """The TTA spread of each tile's top class; None without TTA, NaN where not done."""
        if self.spread is None:
            return None
        out = np.full(self.n_tiles, np.nan, dtype=np.float32)
        done = np.flatnonzero(self.status == TILE_DONE)
        if len(done):
            top = np.argmax(self.probs[done], axis=1)
            out[done] = self.spread[done, top]
        return out

    def set_batch(self, indices: np.ndarray, probs: np.ndarray, spread: np.ndarray | None = None) -> None:
        self.probs[indices] = probs
        self.status[indices] = TILE_DONE
        if self.spread is not None and spread is not None:
            self.spread[indices] = spread

    def set_failed(self, index: int, message: str) -> None:
        self.status[index] = TILE_FAILED
        self.errors[int(index)] = message

    def set_qc(self, index: int, flags: int) -> None:
        """Leave tile ``index`` out for the quality-control reasons ``flags``."""
        self.status[index] = TILE_QC
        self.qc[index] |= np.uint8(flags)
        self.errors.pop(int(index), None)

    # ----- heatmap ----------------------------------------------------------------------------
    def heatmap(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-cell class probabilities averaged over the done tiles covering each cell.

        Returns:
            ``(hm_probs, hm_covered)``: float32 (hm_rows, hm_cols, C), NaN where no done tile
            covers a cell, and the int32 count of done tiles covering each cell.
        """
        done = np.flatnonzero(self.status == TILE_DONE)
        return self._cell_average(done, self.probs[done])

    def cell_mean(self, values: np.ndarray) -> np.ndarray:
        """A per-tile number averaged into the heatmap cells over the done tiles covering each.

        Args:
            values: ``(N,)`` one number per tile (NaN ignored).

        Returns:
            ``(hm_rows, hm_cols)`` float32, NaN where no done tile with a number covers a cell.
        """
        use = np.flatnonzero((self.status == TILE_DONE) & np.isfinite(values))
        return self._cell_average(use, values[use])[0]

    def _cell_average(self, tiles: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``values`` (one row per tile of ``tiles``) averaged into the cells those tiles cover.

        Returns:
            The float32 averages (NaN where no tile covers a cell) and the int32 count per cell.
        """
        g = self.grid
        acc = np.zeros((g.hm_rows, g.hm_cols, *values.shape[1:]), dtype=np.float64)
        cnt = np.zeros((g.hm_rows, g.hm_cols), dtype=np.int32)
        for dy in range(g.k):
            for dx in range(g.k):
                hm_r = self.t_row[tiles] + dy
                hm_c = self.t_col[tiles] + dx
                ok = (hm_r < g.hm_rows) & (hm_c < g.hm_cols)
                np.add.at(acc, (hm_r[ok], hm_c[ok]), values[ok])
                np.add.at(cnt, (hm_r[ok], hm_c[ok]), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (acc / cnt.reshape(cnt.shape + (1,) * (acc.ndim - 2))).astype(np.float32)
        mean[cnt == 0] = np.nan
        return mean, cnt

    # ----- summary ----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Per-class composition of the analysed tissue; the one source of these numbers.

        Tile counts and mean confidences are per tile (top class). Areas are per heatmap cell
        (its averaged top class), clipped to the slide, so overlapping tiles are not counted
        twice; percentages are of the analysed area.
        """
        names = self.class_names
        labels = self.labels()
        conf = self.confidences()
        hm, cnt = self.heatmap()
        covered = cnt > 0
        hm_labels = np.full(cnt.shape, -1, dtype=np.int64)
        if np.any(covered):
            hm_labels[covered] = np.argmax(hm[covered], axis=1)
        mm2_per_l0px = (self.provenance.mpp / 1000.0) ** 2
        cell_mm2 = self.grid.cell_areas_l0() * mm2_per_l0px
        total_mm2 = float(cell_mm2[covered].sum())
        classes = []
        for k, name in enumerate(names):
            sel = labels == k
            area = float(cell_mm2[hm_labels == k].sum())
            classes.append(
                {
                    "name": name,
                    "color": self.provenance.class_colors[k],
                    "tiles": int(np.count_nonzero(sel)),
                    "area_mm2": round(area, 6),
                    "percent": round(100.0 * area / total_mm2, 4) if total_mm2 > 0 else 0.0,
                    "mean_confidence": round(float(np.mean(conf[sel])), 6) if np.any(sel) else None,
                }
            )
        # Unsure tissue: heatmap cells whose averaged top two classes are within UNSURE_MARGIN.
        unsure_mm2 = 0.0
        if np.any(covered):
            unsure_cells = covered.copy()
            unsure_cells[covered] = margin_of(hm[covered]) < UNSURE_MARGIN
            unsure_mm2 = float(cell_mm2[unsure_cells].sum())
        done = self.status == TILE_DONE
        qc_tiles = self.status == TILE_QC
        return {
            "tiles_total": self.n_tiles,
            "tiles_done": self.n_done,
            "tiles_failed": self.n_failed,
            "tiles_pending": int(np.count_nonzero(self.status == TILE_PENDING)),
            "tiles_qc": int(np.count_nonzero(qc_tiles)),
            "qc_by_reason": count_by_reason(self.qc[qc_tiles]),
            "analysed_area_mm2": round(total_mm2, 6),
            "classes": classes,
            "uncertainty": {
                "margin_threshold": UNSURE_MARGIN,
                "unsure_area_mm2": round(unsure_mm2, 6),
                "unsure_percent": round(100.0 * unsure_mm2 / total_mm2, 4) if total_mm2 > 0 else 0.0,
                "unsure_tiles": int(np.count_nonzero(self.margin()[done] < UNSURE_MARGIN)),
                "mean_entropy": round(float(np.mean(self.entropy()[done])), 6) if np.any(done) else None,
                "mean_top_spread": (round(float(np.nanmean(spread[done])), 6)
                                    if (spread := self.top_spread()) is not None and np.any(done) else None),
            },
        }

    # ----- (de)serialisation as plain arrays ----------------------------------------------------
    def grid_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for ``predictions.npz`` and the cache: tiles and the heatmap grid."""
        hm, cnt = self.heatmap()
        rects = self.rects()
        return {
            "t_col": self.t_col,
            "t_row": self.t_row,
            "l0_x": rects[:, 0].astype(np.int64),
            "l0_y": rects[:, 1].astype(np.int64),
            "l0_w": rects[:, 2].astype(np.int64),
            "l0_h": rects[:, 3].astype(np.int64),
            "tissue": self.tissue,
            "probs": self.probs,
            "status": self.status,
            "qc": self.qc,
            "entropy": self.entropy(),
            "margin": self.margin(),
            "hm_probs": hm,
            "hm_count": cnt,
            "class_names": np.array(self.class_names),
            **({"spread": self.spread} if self.spread is not None else {}),
        }

    def grid_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.grid)

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

from chaoyang_desktop.core.slide.tiling import GridSpec

TILE_PENDING = 0
TILE_DONE = 1
TILE_FAILED = 2


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


@dataclass
class AnalysisResult:
    """Predictions of one slide with one model and one set of settings.

    Per-tile arrays share the tile index ``i`` (length N, only tiles kept after tissue and ROI
    filtering). ``probs[i]`` is NaN until tile ``i`` is done.
    """

    provenance: Provenance
    grid: GridSpec
    t_col: np.ndarray
    t_row: np.ndarray
    tissue: np.ndarray
    probs: np.ndarray
    status: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)

    @classmethod
    def empty(
        cls, provenance: Provenance, grid: GridSpec, t_col: np.ndarray, t_row: np.ndarray, tissue: np.ndarray
    ) -> AnalysisResult:
        n = len(t_col)
        c = len(provenance.class_names)
        return cls(
            provenance=provenance,
            grid=grid,
            t_col=np.asarray(t_col, dtype=np.int32),
            t_row=np.asarray(t_row, dtype=np.int32),
            tissue=np.asarray(tissue, dtype=np.float32),
            probs=np.full((n, c), np.nan, dtype=np.float32),
            status=np.zeros(n, dtype=np.uint8),
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
    def complete(self) -> bool:
        return not bool(np.any(self.status == TILE_PENDING))

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

    def set_batch(self, indices: np.ndarray, probs: np.ndarray) -> None:
        self.probs[indices] = probs
        self.status[indices] = TILE_DONE

    def set_failed(self, index: int, message: str) -> None:
        self.status[index] = TILE_FAILED
        self.errors[int(index)] = message

    # ----- heatmap ----------------------------------------------------------------------------
    def heatmap(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-cell class probabilities averaged over the done tiles covering each cell.

        Returns:
            ``(hm_probs, hm_covered)``: float32 (hm_rows, hm_cols, C), NaN where no done tile
            covers a cell, and the int32 count of done tiles covering each cell.
        """
        g = self.grid
        c = len(self.class_names)
        acc = np.zeros((g.hm_rows, g.hm_cols, c), dtype=np.float64)
        cnt = np.zeros((g.hm_rows, g.hm_cols), dtype=np.int32)
        done = np.flatnonzero(self.status == TILE_DONE)
        for dy in range(g.k):
            for dx in range(g.k):
                hm_r = self.t_row[done] + dy
                hm_c = self.t_col[done] + dx
                ok = (hm_r < g.hm_rows) & (hm_c < g.hm_cols)
                np.add.at(acc, (hm_r[ok], hm_c[ok]), self.probs[done[ok]])
                np.add.at(cnt, (hm_r[ok], hm_c[ok]), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            hm = (acc / cnt[..., None]).astype(np.float32)
        hm[cnt == 0] = np.nan
        return hm, cnt

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
        return {
            "tiles_total": self.n_tiles,
            "tiles_done": self.n_done,
            "tiles_failed": self.n_failed,
            "tiles_pending": int(np.count_nonzero(self.status == TILE_PENDING)),
            "analysed_area_mm2": round(total_mm2, 6),
            "classes": classes,
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
            "hm_probs": hm,
            "hm_count": cnt,
            "class_names": np.array(self.class_names),
        }

    def grid_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.grid)

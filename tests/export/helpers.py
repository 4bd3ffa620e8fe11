"""A small hand-made analysis result shared by the exporter tests (built at test time)."""

from __future__ import annotations

import numpy as np

from chaoyang_desktop.core.analysis.results import AnalysisResult, Provenance
from chaoyang_desktop.core.slide.tile_qc import QC_BLUR, QC_PEN
from chaoyang_desktop.core.slide.tiling import make_grid

CLASS_NAMES = ("Normal", "Serrated", "Adenocarcinoma", "Adenoma")
CLASS_COLORS = ("#2ca02c", "#ff7f0e", "#d62728", "#1f77b4")
L0_W, L0_H, MPP = 2000, 1500, 0.5

#: The tile at this grid position is "Normal" with probability 1 in every fixture result.
SURE_NORMAL = (1, 1)
#: Grid positions dropped as background, and the one whose inference failed.
BACKGROUND = {(3, 0), (0, 2)}
FAILED = (2, 2)
#: With ``with_qc``: the grid position quality control leaves out, and why.
QC_TILE = (0, 0)
QC_BITS = QC_PEN | QC_BLUR


def make_provenance(stride_um: float) -> Provenance:
    return Provenance(
        slide_path="/data/slides/case 01.svs",
        slide_fingerprint="sha256:0123abcd",
        l0_width=L0_W,
        l0_height=L0_H,
        mpp=MPP,
        mpp_assumed=False,
        vendor="aperio",
        objective_power=20.0,
        model_id="test/chaoyang-vit",
        weights_sha256="f" * 64,
        class_names=CLASS_NAMES,
        class_colors=CLASS_COLORS,
        channel_order="RGB",
        resize="bilinear",
        tile_um=256.0,
        stride_um=stride_um,
        tile_px=512,
        input_size=224,
        tissue_threshold=0.25,
        roi_path=None,
        software_version="0.1.0",
        created="2024-05-01T12:00:00+00:00",
    )


def build_result(stride_um: float = 256.0, *, pending: int = 0, seed: int = 0, with_qc: bool = False) -> AnalysisResult:
    """A 2000 x 1500 px slide at 0.5 mpp with 256 um tiles: all tiles but the background ones.

    Probabilities are seeded softmax values; ``SURE_NORMAL`` is one-hot Normal; ``FAILED``
    failed; the last ``pending`` tiles are left pending. With ``with_qc``, quality control left
    ``QC_TILE`` out for ``QC_BITS`` (it was never classified).
    """
    grid = make_grid(L0_W, L0_H, MPP, 256.0, stride_um, 512, (1.0,))
    t_col, t_row = grid.all_tiles()
    keep = np.array([(int(c), int(r)) not in BACKGROUND for c, r in zip(t_col, t_row)])
    t_col, t_row = t_col[keep], t_row[keep]
    rng = np.random.default_rng(seed)
    result = AnalysisResult.empty(make_provenance(stride_um), grid, t_col, t_row, rng.uniform(0.3, 1.0, len(t_col)))
    logits = rng.normal(0.0, 2.0, (len(t_col), len(CLASS_NAMES)))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for i, (c, r) in enumerate(zip(t_col, t_row)):
        if (int(c), int(r)) == SURE_NORMAL:
            probs[i] = [1.0, 0.0, 0.0, 0.0]
    positions = [(int(c), int(r)) for c, r in zip(t_col, t_row)]
    failed = positions.index(FAILED) if FAILED in positions else None
    flagged = positions.index(QC_TILE) if with_qc else None
    todo = [i for i in range(len(t_col)) if i != failed][: max(0, len(t_col) - 1 - pending)]
    todo = [i for i in todo if i != flagged]
    if flagged is not None:
        result.set_qc(flagged, QC_BITS)
    if todo:
        result.set_batch(np.array(todo), probs[todo].astype(np.float32))
    if failed is not None:
        result.set_failed(failed, "OpenSlideError: read error at (1024, 1024)")
    return result


def tile_index(result: AnalysisResult, col: int, row: int) -> int:
    return int(np.flatnonzero((result.t_col == col) & (result.t_row == row))[0])

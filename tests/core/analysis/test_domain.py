"""The domain check: input the model cannot judge is refused with its reason, not classified."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from chaoyang_desktop.core.analysis import pipeline
from chaoyang_desktop.core.analysis.run import analyze_slide
from chaoyang_desktop.core.analysis.domain import RESOLUTION_TOLERANCE, DomainCheck, check_appearance, check_resolution
from chaoyang_desktop.core.model.engine_settings import EngineSettings
from chaoyang_desktop.core.errors import NoTilesError, OutOfDomainError, SettingsError
from chaoyang_desktop.core.model.inference import Classifier
from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings, plan_analysis
from chaoyang_desktop.core.slide.roi import Roi
from chaoyang_desktop.core.slide.reader import check_mpp, open_slide
from tests.model_factory import TINY_CONFIG, write_checkpoint
from tests.synthetic import tissue_image, write_pyramid_tiff


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("model"), TINY_CONFIG, seed=5)
    return Classifier.load(str(folder), EngineSettings(device="cpu", batch_size=4))


def _thumbnail(path: Path) -> np.ndarray:
    with open_slide(path) as slide:
        return slide.thumbnail(2048)


# ----- the real files -------------------------------------------------------------------------------
def test_the_fluorescence_ndpi_is_refused_naming_fluorescence(test_data: Path, classifier: Classifier) -> None:
    path = test_data / "slides" / "Hamamatsu-test3-DAPI-2-387.ndpi"
    with pytest.raises(OutOfDomainError, match="fluorescence") as info:
        analyze_slide(path, classifier, AnalysisSettings())
    check = info.value.check
    assert isinstance(check, DomainCheck) and [f.kind for f in check.findings] == ["fluorescence"]
    assert check.measurements["background_brightness"] < 40  # black, as a DAPI background is


@pytest.mark.parametrize("name", ["slides/CMU-1-Small-Region.svs", "slides/CMU-1-Small-Region_generic-pyramid.tiff",
                                  "images/CMU-1-Small-Region_full.jpg"])
def test_the_real_h_and_e_images_pass(test_data: Path, name: str) -> None:
    findings, measurements = check_appearance(_thumbnail(test_data / name))
    assert findings == []
    assert measurements["he_hue_share"] > 0.9 and measurements["brown_hue_share"] < 0.05


def test_real_h_and_e_patches_pass(test_data: Path) -> None:
    from chaoyang_desktop.core.slide.imageio import decode_image

    patches = sorted(p for p in (test_data / "patches").rglob("*") if p.is_file())
    refused = [p.name for p in patches if check_appearance(decode_image(p))[0]]
    assert refused == []


# ----- images made from the real H&E: grey, and restained brown ------------------------------------------
def test_a_grayscale_scan_is_refused(test_data: Path) -> None:
    rgb = _thumbnail(test_data / "images" / "CMU-1-Small-Region_full.jpg")
    grey = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    findings, _ = check_appearance(grey)
    assert [f.kind for f in findings] == ["grayscale"] and "grayscale" in findings[0].message


def test_a_brown_immunostain_is_refused(test_data: Path) -> None:
    # The same tissue with every coloured pixel turned to DAB's brown hue (about 30 degrees).
    rgb = _thumbnail(test_data / "images" / "CMU-1-Small-Region_full.jpg")
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)
    hsv[..., 0] = np.where(hsv[..., 1] > 25, round(30 * 256 / 360), hsv[..., 0])
    brown = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)
    findings, measurements = check_appearance(brown)
    assert [f.kind for f in findings] == ["stain"] and "DAB" in findings[0].message
    assert measurements["brown_hue_share"] > 0.9


# ----- resolution --------------------------------------------------------------------------------------------
def test_resolution_tolerance_and_message() -> None:
    assert check_resolution(0.5, 0.5) is None and check_resolution(0.25, 0.5) is None
    assert check_resolution(0.5 * RESOLUTION_TOLERANCE, 0.5) is None
    assert check_resolution(0.5 * RESOLUTION_TOLERANCE * 1.01, 0.5) is not None
    finding = check_resolution(29.0, 0.5)
    assert finding is not None and finding.kind == "resolution"
    assert "29 um/px" in finding.message and "0.5 um/px" in finding.message and "58 times" in finding.message


def test_a_coarse_slide_is_stopped_with_its_pixel_size(classifier: Classifier, tmp_path: Path) -> None:
    rgb = tissue_image(1536, 2048, [(0, 0, 2048, 1536)], seed=3)
    path = write_pyramid_tiff(tmp_path / "coarse.tiff", rgb, mpp=2.0, levels=1)
    with pytest.raises(OutOfDomainError, match=r"2 um/px, 4 times coarser"):
        analyze_slide(path, classifier, AnalysisSettings())
    # Analysed only when asked, and every output can tell.
    out = analyze_slide(path, classifier, AnalysisSettings(allow_out_of_domain=True))
    check = out.result.provenance.domain_check
    assert check is not None and check["status"] == "analysed anyway" and check["overridden"]
    assert [f["kind"] for f in check["findings"]] == ["resolution"]
    # 29 um/px (a real DICOM overview was): a tile would be a few pixels; refused even with the override.
    with pytest.raises(SettingsError, match=r"29 um/px.*9 px wide"):
        analyze_slide(path, classifier, AnalysisSettings(allow_out_of_domain=True), mpp=29.0)


# ----- nothing to analyse ------------------------------------------------------------------------------------
def test_nothing_to_analyse_says_why(classifier: Classifier, tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (1, 1), (200, 100, 160)).save(tmp_path / "one.png")
    with pytest.raises(NoTilesError, match="1 x 1 px.*smaller than one 256 um tile"):
        analyze_slide(tmp_path / "one.png", classifier, AnalysisSettings())
    small = write_pyramid_tiff(tmp_path / "small.tiff", tissue_image(300, 300, [(0, 0, 300, 300)]), mpp=0.5, levels=1)
    with pytest.raises(NoTilesError, match="300 x 300 px"):
        analyze_slide(small, classifier, AnalysisSettings())
    blocks = write_pyramid_tiff(tmp_path / "blocks.tiff", tissue_image(1536, 2048, [(0, 0, 1024, 512)]), mpp=0.5,
                                levels=2)
    outside = Roi.from_polygon_points([(5000, 5000), (6000, 5000), (6000, 6000), (5000, 6000)])
    with pytest.raises(NoTilesError, match="lies outside the slide"):
        analyze_slide(blocks, classifier, AnalysisSettings(roi=outside))
    glass = write_pyramid_tiff(tmp_path / "glass.tiff", tissue_image(1536, 2048, []), mpp=0.5, levels=2)
    with pytest.raises(NoTilesError, match="No tile has at least 25% tissue"):
        analyze_slide(glass, classifier, AnalysisSettings())


# ----- option ranges -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("tile_um", [math.nan, 1e9, 0.0, 0.001, -256.0, math.inf])
def test_tile_sizes_out_of_range_are_refused(tile_um: float) -> None:
    with pytest.raises(SettingsError, match="tile size must be between 16 and 4096"):
        AnalysisSettings(tile_um=tile_um).validated()
    with pytest.raises(SettingsError, match="stride"):
        AnalysisSettings(stride_um=tile_um).validated()


@pytest.mark.parametrize("mpp", [1e-9, 0.0, -0.5, 1e6, math.nan])
def test_pixel_sizes_out_of_range_are_refused(mpp: float) -> None:
    with pytest.raises(SettingsError, match="between 0.01 and 100"):
        check_mpp(mpp, "--mpp")
    check_mpp(0.25)
    check_mpp(None)


def test_threads_and_batch_size_ranges() -> None:
    for bad in ({"threads": -1}, {"threads": 0}, {"batch_size": 0}, {"batch_size": 100_000}):
        with pytest.raises(SettingsError):
            EngineSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="reader threads"):
        AnalysisSettings(workers=0).validated()


def test_plans_of_tiny_tiles_or_absurd_counts_are_refused(classifier: Classifier, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pyramid_tiff(tmp_path / "s.tiff", tissue_image(1536, 2048, [(0, 0, 2048, 1536)]), mpp=0.5, levels=1)
    with open_slide(path, mpp=50.0) as slide, pytest.raises(SettingsError, match="5 px wide at 50 um/px"):
        plan_analysis(slide, classifier.profile, AnalysisSettings())
    monkeypatch.setattr(pipeline, "MAX_TILES", 40)
    with open_slide(path) as slide, pytest.raises(SettingsError, match="48 tiles"):
        plan_analysis(slide, classifier.profile, AnalysisSettings(tile_um=128))

"""Fixtures of the exporter tests."""

from __future__ import annotations

import pytest

from chaoyang_desktop.core.analysis.results import AnalysisResult
from tests.export.helpers import build_result


@pytest.fixture
def result() -> AnalysisResult:
    """The default hand-made result: tiles without overlap, one failed, none pending."""
    return build_result()

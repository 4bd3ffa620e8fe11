"""Temperature scaling: fits checked against worked-out optima and an independent torch fit on the logits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chaoyang_desktop.core.errors import SettingsError
from chaoyang_desktop.core.learn.calibration import (
    MIN_LABELLED,
    apply_temperature,
    fit_temperature,
    log_probabilities,
)
from chaoyang_desktop.core.learn.evaluate import build_report, fit_report_temperature
from chaoyang_desktop.core.learn.metrics import calibration
from chaoyang_desktop.core.model.temperature import TEMPERATURE_RANGE, TemperatureFile

NAMES = ("Normal", "Serrated", "Adenocarcinoma", "Adenoma")
SHA = "ab" * 32


def _binary(a: float, q: float, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Every patch has logits [a, 0]; a fraction q is labelled class 0."""
    k = round(q * n)
    p0 = 1.0 / (1.0 + math.exp(-a))
    log_probs = np.tile([math.log(p0), math.log(1.0 - p0)], (n, 1))
    labels = np.array([0] * k + [1] * (n - k))
    return log_probs, labels


def _entropy(q: float) -> float:
    return -(q * math.log(q) + (1 - q) * math.log(1 - q))


@pytest.mark.parametrize(("a", "q"), [(4.0, 0.8), (1.0, 0.95), (2.5, 0.6)])
def test_binary_optimum_is_known_in_closed_form(a: float, q: float) -> None:
    # NLL(T) = -q log s(a/T) - (1-q) log(1 - s(a/T)) is least where s(a/T) = q, i.e. T = a / logit(q),
    # and there it equals the binary entropy of q.
    log_probs, labels = _binary(a, q)
    fit = fit_temperature(log_probs, labels)
    expected = a / math.log(q / (1 - q))
    assert fit.temperature == pytest.approx(expected, rel=1e-9)
    assert fit.nll_after == pytest.approx(_entropy(q), rel=1e-9)
    s = 1.0 / (1.0 + math.exp(-a))
    assert fit.nll_before == pytest.approx(-(q * math.log(s) + (1 - q) * math.log(1 - s)), rel=1e-9)
    assert fit.n == 200 and fit.base_temperature == 1.0 and fit.relative == fit.temperature
    # Over-confident (a large for q) softens, T > 1; under-confident sharpens, T < 1.
    assert (fit.temperature > 1) == (a > math.log(q / (1 - q)))


def test_logits_and_log_probabilities_give_the_same_fit() -> None:
    log_probs, labels = _binary(3.0, 0.75)
    logits = np.tile([3.0 + 7.0, 7.0], (labels.size, 1))  # log-probs plus a per-row constant
    assert fit_temperature(logits, labels).temperature == pytest.approx(fit_temperature(log_probs, labels).temperature,
                                                                        rel=1e-12)


def _torch_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The usual implementation (Guo et al.'s code): LBFGS on the cross-entropy of logits / T, in float64."""
    z = torch.from_numpy(logits).double()
    y = torch.from_numpy(labels).long()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def _over_confident(n: int = 400, k: int = 4, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a model right about 70 % of the time that claims far more (logits scaled up)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), labels] += 1.2
    return 4.0 * logits, labels


def test_multiclass_matches_an_independent_fit_on_the_logits() -> None:
    logits, labels = _over_confident()
    probs = torch.softmax(torch.from_numpy(logits).float(), 1).numpy()  # float32, as the classifier gives
    fit = fit_temperature(log_probabilities(probs), labels)
    ref = _torch_temperature(logits, labels)
    assert ref > 2  # the scaled-up logits need softening
    assert fit.temperature == pytest.approx(ref, rel=1e-5)  # float32 probabilities limit the agreement
    ce = float(torch.nn.functional.cross_entropy(torch.from_numpy(logits) / ref, torch.from_numpy(labels)))
    assert fit.nll_after == pytest.approx(ce, rel=1e-5) and fit.nll_after < fit.nll_before


def test_a_temperature_already_applied_composes() -> None:
    logits, labels = _over_confident(seed=8)
    t_full = _torch_temperature(logits, labels)
    t0 = 1.7
    probs_t0 = torch.softmax(torch.from_numpy(logits / t0), 1).numpy()  # what a calibrated classifier returned
    fit = fit_temperature(log_probabilities(probs_t0), labels, base_temperature=t0)
    assert fit.base_temperature == t0
    assert fit.temperature == pytest.approx(t_full, rel=1e-6)  # the final temperature applies to raw logits
    assert fit.relative == pytest.approx(t_full / t0, rel=1e-6)
    # Re-tempering the T0 probabilities by the relative temperature is softmax(z / T).
    expected = torch.softmax(torch.from_numpy(logits / fit.temperature), 1).numpy()
    np.testing.assert_allclose(apply_temperature(probs_t0, fit.relative), expected, atol=1e-6)
    # The search keeps the *final* temperature in range: with T0 near the top, a softening fit is refused.
    with pytest.raises(SettingsError, match="above"):
        fit_temperature(log_probabilities(probs_t0), labels, base_temperature=TEMPERATURE_RANGE[1] / 1.5)


def test_apply_temperature_keeps_predictions() -> None:
    logits, _ = _over_confident(n=50)
    probs = torch.softmax(torch.from_numpy(logits), 1).numpy()
    np.testing.assert_allclose(apply_temperature(probs, 1.0), probs, atol=1e-6)
    soft = apply_temperature(probs, 3.0)
    np.testing.assert_array_equal(soft.argmax(1), probs.argmax(1))
    assert (soft.max(1) <= probs.max(1) + 1e-6).all() and np.allclose(soft.sum(1), 1, atol=1e-6)
    with pytest.raises(SettingsError):
        apply_temperature(probs, 0.0)


def test_exact_zeros_from_float32_underflow_are_clipped() -> None:
    logits, labels = _over_confident(seed=5)
    other = labels != 0
    logits[other, 0] -= 200.0  # class 0 underflows to exactly 0 in float32 where it is not the label
    probs = torch.softmax(torch.from_numpy(logits).float(), 1).numpy()
    assert (probs[other, 0] == 0).all()
    fit = fit_temperature(log_probabilities(probs), labels)
    assert math.isfinite(fit.temperature) and math.isfinite(fit.nll_after) and fit.nll_after < fit.nll_before
    # -inf (log of an exact zero) is accepted too and gives the same fit.
    with np.errstate(divide="ignore"):
        raw_log = np.log(probs.astype(np.float64))
    assert fit_temperature(raw_log, labels).temperature == pytest.approx(fit.temperature, rel=1e-12)


def test_refusals_say_what_to_do() -> None:
    log_probs, labels = _binary(2.0, 0.7, n=MIN_LABELLED - 1)
    with pytest.raises(SettingsError, match=f"at least {MIN_LABELLED} labelled patches") as e:
        fit_temperature(log_probs, labels)
    assert "\n" not in str(e.value) and "label more" in str(e.value)
    log_probs, labels = _binary(2.0, 0.7, n=40)
    with pytest.raises(SettingsError, match="two classes"):
        fit_temperature(log_probs, np.zeros(40, dtype=np.int64))
    # Every patch right with a margin: the NLL falls for ever as T shrinks, the fit hits the lower bound.
    logits = np.tile([3.0, 0.0], (40, 1))
    logits[20:] = [0.0, 3.0]
    labels = np.array([0] * 20 + [1] * 20)
    with pytest.raises(SettingsError, match="below 0.05") as e:
        fit_temperature(logits, labels)
    assert "\n" not in str(e.value)
    # Every patch wrong: the fit wants T beyond the upper bound (flattening every answer).
    with pytest.raises(SettingsError, match="above 20") as e:
        fit_temperature(logits, 1 - labels)
    assert "channel order" in str(e.value)
    with pytest.raises(SettingsError, match="NaN"):
        fit_temperature(np.full((40, 2), np.nan), labels)
    with pytest.raises(SettingsError, match="labels"):
        fit_temperature(logits, labels[:-1])


def _report(model: dict[str, object]) -> object:
    logits, labels = _over_confident(n=300, seed=11)
    probs = torch.softmax(torch.from_numpy(logits), 1).numpy()
    return build_report(NAMES, [f"p{i}.png" for i in range(labels.size)], labels, probs, model=model,
                        data={"source": "/data/labelled", "kind": "folders"}), logits, labels


def test_report_fit_round_trips_through_the_temperature_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    report, logits, labels = _report({"model_id": "local/model", "weights_sha256": SHA})
    file, fitted = fit_report_temperature(report)
    assert file.temperature == pytest.approx(_torch_temperature(logits, labels), rel=1e-5)
    assert file.model_id == "local/model" and file.weights_sha256 == SHA and file.fitted_on == "/data/labelled"
    assert file.n == 300 and file.nll_after < file.nll_before
    fit = fitted.calibration_fit
    assert fit is not None and report.calibration_fit is None  # a copy; the evaluation itself is unchanged
    assert fit.before.ece == report.calibration.ece == file.ece_before
    assert file.ece_after == fit.after.ece < fit.before.ece  # the over-confidence is gone
    np.testing.assert_array_equal(fitted.probs, report.probs)  # predictions.csv keeps what the model said
    d = fitted.to_dict()["temperature_scaling"]
    assert d["temperature"] == file.temperature and d["ece_after"] == fit.after.ece and len(d["calibration_after"]["bins"]) == 15
    md = fitted.to_markdown()
    assert "## Temperature scaling" in md and f"| {fit.before.ece:.4f} | {fit.after.ece:.4f} |" in md
    assert "## Temperature scaling" not in report.to_markdown()

    path = tmp_path / "sub" / "calibration.json"
    path.parent.mkdir()
    file.save(path)
    loaded = TemperatureFile.load(path)
    assert loaded.temperature == file.temperature and loaded.weights_sha256 == SHA and loaded.n == 300
    assert loaded.ece_before == file.ece_before and loaded.nll_after == file.nll_after and loaded.path == str(path)
    loaded.check_weights(SHA)
    with pytest.raises(SettingsError, match="other weights"):
        loaded.check_weights("cd" * 32)
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["calibration.json"]  # atomic: no temporary left


def test_report_fit_composes_with_the_temperature_it_ran_with() -> None:
    logits, labels = _over_confident(n=300, seed=11)
    t0 = 1.5
    probs = torch.softmax(torch.from_numpy(logits / t0), 1).numpy()
    report = build_report(NAMES, [f"p{i}.png" for i in range(labels.size)], labels, probs,
                          model={"model_id": "m", "weights_sha256": SHA, "temperature": t0})
    file, fitted = fit_report_temperature(report)
    t_full = _torch_temperature(logits, labels)
    assert file.temperature == pytest.approx(t_full, rel=1e-5)
    assert fitted.calibration_fit is not None and fitted.calibration_fit.base_temperature == t0
    # "After" is the raw logits at the composed temperature, not the T0 probabilities tempered again by it.
    after = calibration(torch.softmax(torch.from_numpy(logits / t_full), 1).numpy(), labels)
    assert fitted.calibration_fit.after.ece == pytest.approx(after.ece, abs=1e-5)
    assert file.ece_before == pytest.approx(calibration(probs, labels).ece)
    assert "T = 1.5" in fitted.calibration_fit.summary()


def test_report_fit_needs_to_know_the_weights() -> None:
    report, _, _ = _report({"model_id": "local/model"})
    with pytest.raises(SettingsError, match="weights"):
        fit_report_temperature(report)

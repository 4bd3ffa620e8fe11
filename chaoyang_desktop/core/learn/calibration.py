"""Fitting a temperature (temperature scaling, Guo et al. 2017) to the user's own labels.

A model fine-tuned elsewhere is often over-confident on another scanner or stain: its top
probability says 0.95 where it is right 80 % of the time. Dividing the logits by one number
``T`` before the softmax fixes much of that without changing any prediction (the order of the
logits is kept). :func:`fit_temperature` picks the ``T`` that minimises the mean negative
log-likelihood (NLL) of labelled patches.

Why we can fit from probabilities, without the logits:
    ``log softmax(z)`` differs from the logits ``z`` by a per-row constant, and a softmax ignores
    per-row constants, so ``softmax(log p / T) == softmax(z / T)`` exactly. The evaluation keeps
    probabilities only; that is enough.

Why probabilities are clipped:
    Probabilities come from float32 softmaxes; a very unlikely class underflows to exactly 0,
    whose log is ``-inf`` and would make ``-inf * 0`` NaNs in the gradient. Zeros are raised to
    :data:`PROB_FLOOR` (the smallest normal float32, log about -87.3), which is where float32
    underflow starts, so the clipped value is the closest one float32 could have held. Such a
    class only matters when it is the true class, and then its NLL is huge either way.

Why bisection:
    The NLL is convex in ``beta = 1 / T`` (its second derivative is the variance of the log
    probabilities under the tempered softmax), so its derivative changes sign once. Bisecting
    on that sign in ``log beta`` cannot diverge or overshoot, whatever the data, and 80 halvings
    of the range bring ``T`` to the last bits of a float64; each costs one pass over ``N x C``
    numbers.

Composition with a temperature already in use:
    When the classifier already divided its logits by ``T0`` (a calibration was loaded), its
    probabilities are ``softmax(z / T0)``. The fit on them finds a *relative* ``T_rel`` and the
    temperature to save is ``T0 * T_rel`` (``softmax((z / T0) / T_rel) == softmax(z / (T0 * T_rel))``).
    :func:`fit_temperature` takes ``base_temperature=T0`` and returns the composed value in
    :attr:`TemperatureFit.temperature`; :attr:`TemperatureFit.relative` is ``T_rel``, the one to
    pass to :func:`apply_temperature` on those probabilities.

Numpy only: the CLI and the GUI fit on the numbers an evaluation already holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chaoyang_desktop.core.errors import SettingsError
from chaoyang_desktop.core.model.temperature import TEMPERATURE_RANGE

#: Fewer labelled patches than this give a temperature that is mostly noise.
MIN_LABELLED = 20
#: Probabilities are clipped at the smallest normal float32 before the log (see the module doc).
PROB_FLOOR = float(np.finfo(np.float32).tiny)
_LOG_FLOOR = math.log(PROB_FLOOR)
#: Bisection halvings of ``log beta``: the range (about 6) shrinks below float64 resolution.
_BISECTIONS = 80

_HOW_TO_FIX = "label more patches of several classes"


@dataclass(frozen=True)
class TemperatureFit:
    """The fitted temperature and what it did to the negative log-likelihood.

    Attributes:
        temperature: The temperature to save and divide the raw logits by: ``base_temperature * relative``.
        nll_before: Mean NLL of the given probabilities (at ``base_temperature``).
        nll_after: Mean NLL at ``temperature``.
        n: Number of labelled patches fitted on.
        base_temperature: The temperature the given probabilities were already computed with (1: none).
    """

    temperature: float
    nll_before: float
    nll_after: float
    n: int
    base_temperature: float = 1.0

    @property
    def relative(self) -> float:
        """The temperature relative to the given probabilities: ``temperature / base_temperature``.

        Pass this, not :attr:`temperature`, to :func:`apply_temperature` on probabilities that
        were computed at ``base_temperature``.
        """
        return self.temperature / self.base_temperature


def log_probabilities(probs: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``log p`` with zeros (float32 underflow) clipped at :data:`PROB_FLOOR` first."""
    p = np.asarray(probs, dtype=np.float64)
    return np.log(np.maximum(p, PROB_FLOOR))


def _log_softmax(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    m = x.max(axis=1, keepdims=True)
    shifted = x - m
    out: npt.NDArray[np.float64] = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return out


def apply_temperature(probs: npt.ArrayLike, temperature: float) -> npt.NDArray[np.float32]:
    """Probabilities re-tempered by ``temperature``: ``softmax(log p / temperature)``.

    Equal to ``softmax(z / (T0 * temperature))`` for probabilities ``p = softmax(z / T0)``; so
    on probabilities already computed with a temperature, pass the *relative* one
    (:attr:`TemperatureFit.relative`). Used to show the "after" metrics without running the model
    again. Zeros are clipped as in :func:`log_probabilities`.
    """
    if not (math.isfinite(temperature) and temperature > 0):
        raise SettingsError(f"A temperature must be a positive number (got {temperature}).")
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, C) (got shape {p.shape}).")
    if p.shape[0] == 0:
        return np.zeros(p.shape, dtype=np.float32)
    return np.exp(_log_softmax(log_probabilities(p) / temperature)).astype(np.float32)


def _checked_labels(labels: npt.ArrayLike, n_rows: int | None, n_classes: int | None) -> npt.NDArray[np.int64]:
    t = np.asarray(labels)
    if t.ndim != 1 or (t.size and not np.issubdtype(t.dtype, np.integer)):
        raise SettingsError(f"The labels must be a 1-D list of class indices (got {t.dtype}, shape {t.shape}).")
    t = t.astype(np.int64)
    if n_rows is not None and t.size != n_rows:
        raise SettingsError(f"There are {t.size} labels for {n_rows} rows of probabilities.")
    if n_classes is not None and t.size and (t.min() < 0 or t.max() >= n_classes):
        raise SettingsError(f"A label lies outside the {n_classes} classes of the probabilities.")
    return t


def check_fit_possible(labels: npt.ArrayLike) -> None:
    """Refuse labels that cannot give a meaningful temperature, before any inference runs.

    Raises:
        SettingsError: Fewer than :data:`MIN_LABELLED` patches, or a single class.
    """
    t = _checked_labels(labels, None, None)
    if t.size < MIN_LABELLED:
        raise SettingsError(f"Fitting a temperature needs at least {MIN_LABELLED} labelled patches (got {t.size}); "
                            f"{_HOW_TO_FIX}.")
    classes = np.unique(t)
    if classes.size < 2:
        raise SettingsError(f"Fitting a temperature needs labels of at least two classes (all {t.size} patches are "
                            f"class {int(classes[0])}); {_HOW_TO_FIX}.")


def mean_nll(log_probs: npt.NDArray[np.float64], labels: npt.NDArray[np.int64], beta: float = 1.0) -> float:
    """Mean negative log-likelihood of ``softmax(beta * log_probs)`` for the labels."""
    ls = _log_softmax(beta * log_probs)
    return float(-ls[np.arange(labels.size), labels].mean())


def _nll_slope(log_probs: npt.NDArray[np.float64], labels: npt.NDArray[np.int64], beta: float) -> float:
    """d NLL / d beta = mean over patches of ``E_q[log p] - log p_true``, ``q = softmax(beta log p)``."""
    q = np.exp(_log_softmax(beta * log_probs))
    expected = (q * log_probs).sum(axis=1)
    return float((expected - log_probs[np.arange(labels.size), labels]).mean())


def fit_temperature(log_probs: npt.ArrayLike, labels: npt.ArrayLike, *, base_temperature: float = 1.0) -> TemperatureFit:
    """The temperature minimising the mean NLL of ``softmax(log_probs / T)`` over the labels.

    Args:
        log_probs: (N, C) log-probabilities (logits work too: a per-row constant changes nothing).
            Use :func:`log_probabilities` on probabilities that may hold exact zeros.
        labels: (N,) true class indices.
        base_temperature: The temperature ``log_probs`` were already computed with (the
            classifier's :attr:`~chaoyang_desktop.core.model.inference.Classifier.temperature`).
            The returned temperature is ``base_temperature * T_rel`` so it applies to raw logits;
            the search keeps that product inside :data:`TEMPERATURE_RANGE`.

    Raises:
        SettingsError: Too few patches or a single class (:func:`check_fit_possible`), malformed
            input, or an optimum at the edge of :data:`TEMPERATURE_RANGE` (the data does not
            pin the temperature down: usually every patch is right with room to spare, or the
            model is no better than chance on it).
    """
    if not (math.isfinite(base_temperature) and base_temperature > 0):
        raise SettingsError(f"The classifier's temperature must be a positive number (got {base_temperature}).")
    raw = np.asarray(log_probs, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[1] < 2:
        raise SettingsError(f"Fitting a temperature needs (N, C) log-probabilities of at least two classes "
                            f"(got shape {raw.shape}).")
    t = _checked_labels(labels, raw.shape[0], raw.shape[1])
    check_fit_possible(t)
    if np.isnan(raw).any() or np.isposinf(raw).any():
        raise SettingsError("The probabilities hold NaN or infinite values; evaluate again (check the model and "
                            "--precision).")
    # Normalise (logits become log-probabilities), then clip -inf and underflow at the float32 floor.
    lp = np.maximum(_log_softmax(np.maximum(raw, np.finfo(np.float64).min)), _LOG_FLOOR)

    low, high = TEMPERATURE_RANGE
    # beta = 1 / T_rel, with T = base * T_rel inside [low, high].
    lo_b, hi_b = math.log(base_temperature / high), math.log(base_temperature / low)
    if _nll_slope(lp, t, math.exp(lo_b)) >= 0:
        raise SettingsError(
            f"The best temperature is above {high:g}: on these {t.size} patches the model is hardly better than "
            f"chance, so calibration would flatten every answer; check the class map and the channel order "
            f"(evaluate --compare-channel-orders) before calibrating.")
    if _nll_slope(lp, t, math.exp(hi_b)) <= 0:
        raise SettingsError(
            f"The best temperature is below {low:g}: the model is right with room to spare on all of these {t.size} "
            f"patches, which cannot tell how confident it should be; add patches it finds hard (of several classes).")
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo_b + hi_b)
        if mid in (lo_b, hi_b):
            break
        if _nll_slope(lp, t, math.exp(mid)) < 0:
            lo_b = mid  # NLL still falling: the optimum has a larger beta
        else:
            hi_b = mid
    beta = math.exp(0.5 * (lo_b + hi_b))
    # Both ends were checked, so the optimum is inside; the clamp only absorbs rounding at an edge.
    temperature = min(max(base_temperature / beta, low), high)
    return TemperatureFit(
        temperature=temperature,
        nll_before=mean_nll(lp, t, 1.0),
        nll_after=mean_nll(lp, t, beta),
        n=int(t.size),
        base_temperature=float(base_temperature),
    )

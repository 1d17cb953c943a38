"""Drift tests: how far a column's current values are from its reference.

Each test is a :class:`DriftMethod` registered in a :class:`DriftMethods` registry, built-ins
included, so that a new test is one :meth:`DriftMethods.add` call and no edit of the core. The
built-ins follow Evidently's implementations (``evidently.legacy.calculations.stattests``) so
that verdicts compare:

========================  ===========================================  ========  =========
name                      statistic                                    kinds     threshold
========================  ===========================================  ========  =========
``ks``                    two-sample Kolmogorov-Smirnov p-value        numeric   0.05
``chisquare``             chi-square goodness-of-fit p-value           both      0.05
``z``                     two-proportion z-test p-value                both      0.05
``wasserstein``           Wasserstein-1 distance / reference std       numeric   0.1
``jensenshannon``         Jensen-Shannon distance (natural log)        both      0.1
``psi``                   population stability index                   both      0.1
========================  ===========================================  ========  =========

A p-value drifts below its threshold, a distance at or above it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shipyard.errors import SpecError
from shipyard.monitor._columns import ColumnKind, ColumnSamples
from shipyard.plugins import PluginRegistry, load_plugins

__all__ = ["DriftMethod", "DriftMethods", "default_drift_methods"]

StatisticKind = Literal["p_value", "distance"]

_ALL_KINDS: frozenset[ColumnKind] = frozenset({"numeric", "categorical"})
_HIST_MIN_UNIQUE = 20  # above this many reference values a numeric column is binned


@dataclass(frozen=True)
class DriftMethod:
    """One drift test.

    Attributes:
        name: the name used in ``shipyard.yaml`` (``method: psi``) and on the command line.
        title: how reports label its statistic.
        kinds: the column kinds it accepts.
        statistic: ``p_value`` (drift below the threshold) or ``distance`` (drift at or
            above it).
        default_threshold: the threshold when none is configured.
        compute: ``compute(samples) -> statistic``.
        inclusive: a p-value equal to the threshold drifts too (Evidently's KS test).
    """

    name: str
    title: str
    kinds: frozenset[ColumnKind]
    statistic: StatisticKind
    default_threshold: float
    compute: Callable[[ColumnSamples], float]
    inclusive: bool = False

    def drifted(self, value: float, threshold: float) -> bool:
        """Whether ``value`` of this statistic means drift at ``threshold``."""
        if math.isnan(value):
            return False
        if self.statistic == "distance":
            return value >= threshold
        return value <= threshold if self.inclusive else value < threshold


class DriftMethods:
    """Drift tests by name; build one per application with :func:`default_drift_methods`
    (built-ins, then plugins of the ``shipyard.drift_methods`` entry-point group)."""

    def __init__(self) -> None:
        self._methods: PluginRegistry[DriftMethod] = PluginRegistry("drift method")

    def add(self, method: DriftMethod) -> None:
        """Register a test.

        Raises:
            ValueError: a test of that name is already registered.
        """
        self._methods.add(method.name, method)

    def get(self, name: str, *, where: str = "") -> DriftMethod:
        """The test called ``name``.

        Args:
            name: the test's name.
            where: where the name was given, for the error (``monitoring.drift.columns.age``).

        Raises:
            SpecError: no test has that name; the message lists the known ones.
        """
        method = self._methods.find(name)
        if method is None:
            place = f"{where}: " if where else ""
            msg = f"{place}{self._methods.unknown(name)}, or 'auto')"
            raise SpecError(msg)
        return method

    def __iter__(self) -> Iterator[DriftMethod]:
        return iter(self._methods)

    def __contains__(self, name: object) -> bool:
        return name in self._methods


def default_drift_methods() -> DriftMethods:
    """A registry holding Shipyard's built-in drift tests and the installed plugins'.

    Raises:
        PluginError: an installed plugin failed to register.
    """
    methods = DriftMethods()
    for method in _builtins():
        methods.add(method)
    load_plugins("drift_methods", methods)
    return methods


# -- the tests -----------------------------------------------------------------------------


# scipy is imported where a test needs it: the distances above 1,000 reference values (the
# default) need only numpy, and a process that never runs a p-value test never loads it.


def _ks(samples: ColumnSamples) -> float:
    from scipy import stats

    return float(stats.ks_2samp(samples.reference, samples.current).pvalue)


def _wasserstein(samples: ColumnSamples) -> float:
    norm = max(samples.reference_std, 0.001)
    return samples.cdf_area() / norm


def _chisquare(samples: ColumnSamples) -> float:
    counts = samples.counts
    from scipy import stats

    expected = counts.reference * (samples.n_current / samples.n_reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(counts.current, expected).pvalue)


def _z(samples: ColumnSamples) -> float:
    counts = samples.counts
    if counts.keys.size == 1:
        return 1.0
    first = _sorted_first(counts.keys)
    n1, n2 = samples.n_reference, samples.n_current
    p1 = (n1 - int(counts.reference[first])) / n1
    p2 = (n2 - int(counts.current[first])) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))  # the two-sided normal tail, 2 * sf(|z|)


def _jensenshannon(samples: ColumnSamples) -> float:
    from scipy.special import rel_entr  # lighter than scipy.spatial, which imports qhull

    ref, cur = _shares(samples, fill_zeroes=False)
    # scipy.spatial.distance.jensenshannon's formula, natural log
    ref, cur = ref / ref.sum(), cur / cur.sum()
    mid = (ref + cur) / 2.0
    return float(np.sqrt((rel_entr(ref, mid).sum() + rel_entr(cur, mid).sum()) / 2.0))


def _psi(samples: ColumnSamples) -> float:
    ref, cur = _shares(samples, fill_zeroes=True)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def _sorted_first(keys: np.ndarray) -> int:
    """The index of the smallest key (by value, else by text)."""
    try:
        order = sorted(range(keys.size), key=lambda i: keys[i])
    except TypeError:
        order = sorted(range(keys.size), key=lambda i: str(keys[i]))
    return order[0]


def _shares(samples: ColumnSamples, *, fill_zeroes: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each bin's share of each sample: histogram bins for a numeric column with more than 20
    reference values (Sturges' rule over both samples), one bin per value otherwise."""
    if samples.kind == "numeric" and samples.n_unique_reference > _HIST_MIN_UNIQUE:
        ref_counts, cur_counts = samples.histogram(_sturges_edges(samples))
    else:
        ref_counts, cur_counts = samples.counts.reference, samples.counts.current
    ref = ref_counts / samples.n_reference
    cur = cur_counts / samples.n_current
    if fill_zeroes:
        ref, cur = _fill_zeroes(ref), _fill_zeroes(cur)
    return ref, cur


def _sturges_edges(samples: ColumnSamples) -> np.ndarray:
    """The bin edges ``numpy.histogram_bin_edges(both, bins="sturges")`` returns."""
    values, _ = samples.merged
    first, last = float(values[0]), float(values[-1])
    ptp = last - first
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = ptp / (math.log2(values.size) + 1.0)
    if samples.integer and width < 1:
        width = 1.0
    n_bins = math.ceil((last - first) / width) if width else 1
    return np.linspace(first, last, n_bins + 1, endpoint=True)


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    """Give an empty bin a tiny share, so that PSI's logarithm stays finite (as Evidently)."""
    nonzero = shares[shares != 0]
    if nonzero.size == shares.size or nonzero.size == 0:
        return shares
    smallest = float(nonzero.min())
    fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(shares == 0, fill, shares)


def _builtins() -> list[DriftMethod]:
    numeric: frozenset[ColumnKind] = frozenset({"numeric"})
    return [
        DriftMethod("ks", "K-S p-value", numeric, "p_value", 0.05, _ks, inclusive=True),
        DriftMethod("chisquare", "chi-square p-value", _ALL_KINDS, "p_value", 0.05, _chisquare),
        DriftMethod("z", "Z-test p-value", _ALL_KINDS, "p_value", 0.05, _z),
        DriftMethod(
            "wasserstein", "Wasserstein distance (normed)", numeric, "distance", 0.1, _wasserstein
        ),
        DriftMethod(
            "jensenshannon", "Jensen-Shannon distance", _ALL_KINDS, "distance", 0.1, _jensenshannon
        ),
        DriftMethod("psi", "PSI", _ALL_KINDS, "distance", 0.1, _psi),
    ]

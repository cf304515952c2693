"""Probability distributions of work, delays and popularity.

Written in scenarios as ``exp(MEAN)``, ``const(V)``, ``uniform(A, B)``,
``lognormal(mean=M, cv=C)``, ``gamma(mean=M, cv=C)``, ``empirical(FILE.csv)``
and, for key popularity, ``zipf(S)``. Every time distribution knows its
analytic ``mean`` and ``variance`` (so tests can compare samples with theory)
and samples through a NumPy :class:`numpy.random.Generator` it is handed:
distributions own no randomness.
"""

from __future__ import annotations

import csv
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from devopsim.scenario.calls import bind_args, parse_call
from devopsim.scenario.units import parse_duration

__all__ = [
    "Constant",
    "Distribution",
    "Empirical",
    "Exponential",
    "Gamma",
    "LogNormal",
    "Uniform",
    "Zipf",
    "parse_distribution",
    "parse_popularity",
]


class Distribution(ABC):
    """A non-negative random quantity (seconds, for work and delays)."""

    kind: str = ""

    @property
    @abstractmethod
    def mean(self) -> float:
        """The analytic mean."""

    @property
    @abstractmethod
    def variance(self) -> float:
        """The analytic variance."""

    @property
    def cv(self) -> float:
        """Coefficient of variation (standard deviation over mean)."""
        return math.sqrt(self.variance) / self.mean if self.mean > 0 else 0.0

    @abstractmethod
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` independent values with ``rng``."""

    @abstractmethod
    def scaled(self, factor: float) -> Distribution:
        """The distribution of ``factor * X``."""


@dataclass(frozen=True)
class Exponential(Distribution):
    """Exponential with the given mean."""

    mean_: float
    kind: str = field(default="exp", init=False)

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def variance(self) -> float:
        return self.mean_**2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.standard_exponential(n) * self.mean_

    def scaled(self, factor: float) -> Distribution:
        return Exponential(self.mean_ * factor)

    def __str__(self) -> str:
        return f"exp({self.mean_:g})"


@dataclass(frozen=True)
class Constant(Distribution):
    """Always the same value."""

    value: float
    kind: str = field(default="const", init=False)

    @property
    def mean(self) -> float:
        return self.value

    @property
    def variance(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value)

    def scaled(self, factor: float) -> Distribution:
        return Constant(self.value * factor)

    def __str__(self) -> str:
        return f"const({self.value:g})"


@dataclass(frozen=True)
class Uniform(Distribution):
    """Uniform on ``[low, high]``."""

    low: float
    high: float
    kind: str = field(default="uniform", init=False)

    @property
    def mean(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def variance(self) -> float:
        return (self.high - self.low) ** 2 / 12.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.low + (self.high - self.low) * rng.random(n)

    def scaled(self, factor: float) -> Distribution:
        return Uniform(self.low * factor, self.high * factor)

    def __str__(self) -> str:
        return f"uniform({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class _MeanCV(Distribution):
    """A distribution given by its mean and coefficient of variation."""

    mean_: float
    cv_: float

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def variance(self) -> float:
        return (self.mean_ * self.cv_) ** 2

    def scaled(self, factor: float) -> Distribution:
        return type(self)(self.mean_ * factor, self.cv_)

    def __str__(self) -> str:
        return f"{self.kind}(mean={self.mean_:g}, cv={self.cv_:g})"


@dataclass(frozen=True)
class LogNormal(_MeanCV):
    """Log-normal given by its mean and coefficient of variation."""

    kind: str = field(default="lognormal", init=False)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.cv_ == 0:
            return np.full(n, self.mean_)
        sigma2 = math.log1p(self.cv_**2)
        mu = math.log(self.mean_) - sigma2 / 2
        return rng.lognormal(mu, math.sqrt(sigma2), n)


@dataclass(frozen=True)
class Gamma(_MeanCV):
    """Gamma given by its mean and coefficient of variation."""

    kind: str = field(default="gamma", init=False)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.cv_ == 0:
            return np.full(n, self.mean_)
        shape = 1.0 / self.cv_**2
        return rng.gamma(shape, self.mean_ / shape, n)


@dataclass(frozen=True)
class Empirical(Distribution):
    """Resamples the values of a CSV file (seconds), uniformly at random."""

    values: tuple[float, ...]
    source: str = ""
    kind: str = field(default="empirical", init=False)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def variance(self) -> float:
        return float(np.var(self.values))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        arr = np.asarray(self.values, dtype=np.float64)
        return arr[rng.integers(0, arr.size, n)]

    def scaled(self, factor: float) -> Distribution:
        return Empirical(tuple(v * factor for v in self.values), self.source)

    def __str__(self) -> str:
        return f"empirical({self.source})"


@dataclass(frozen=True)
class Zipf:
    """Zipf popularity: the i-th most popular of n items has weight ``i ** -s``."""

    s: float

    def probabilities(self, n: int) -> np.ndarray:
        """Popularity of each of ``n`` items, most popular first, summing to 1."""
        w = np.arange(1, n + 1, dtype=np.float64) ** -self.s
        out: np.ndarray = w / w.sum()
        return out

    def __str__(self) -> str:
        return f"zipf({self.s:g})"


def _positive(x: float, what: str) -> float:
    if x <= 0:
        raise ValueError(f"{what} must be positive (got {x:g})")
    return x


def _cv(text: str) -> float:
    try:
        cv = float(text)
    except ValueError:
        raise ValueError(f"cv must be a number (got {text!r})") from None
    if cv < 0 or not math.isfinite(cv):
        raise ValueError(f"cv must be a non-negative number (got {text!r})")
    return cv


def load_column(path: Path) -> np.ndarray:
    """Read the first numeric column of a CSV file (a header row is skipped).

    Raises:
        ValueError: the file is missing, empty or has non-numeric values.
    """
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    values: list[float] = []
    with path.open(newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                continue
            try:
                values.append(float(row[0]))
            except ValueError:
                if values:
                    raise ValueError(f"{path}:{lineno}: not a number: {row[0]!r}") from None
    if not values:
        raise ValueError(f"{path}: no numeric values")
    arr = np.asarray(values, dtype=np.float64)
    if (arr < 0).any() or not np.isfinite(arr).all():
        raise ValueError(f"{path}: values must be finite and non-negative")
    return arr


_KINDS = (
    "exp(MEAN), const(V), uniform(A, B), lognormal(mean=M, cv=C), gamma(mean=M, cv=C), empirical(FILE.csv)"
)


def parse_distribution(
    value: object,
    base_dir: Path | None = None,
    unit: Callable[[object], float] = parse_duration,
) -> Distribution:
    """Parse a distribution of a non-negative quantity (by default a duration).

    A bare value (``5ms``) means a constant.

    Raises:
        ValueError: unknown distribution, wrong arguments, or bad values.
    """
    if isinstance(value, Distribution):
        return value
    if not isinstance(value, str):
        return Constant(unit(value))
    call = parse_call(value)
    if call is None:
        try:
            return Constant(unit(value))
        except ValueError:
            raise ValueError(f"expected a distribution: {_KINDS} (got {value!r})") from None
    name, args, kwargs = call.name, call.args, call.kwargs
    if name in ("exp", "exponential"):
        b = bind_args(name, args, kwargs, ["mean"])
        return Exponential(_positive(unit(b["mean"]), "exp() mean"))
    if name in ("const", "constant"):
        b = bind_args(name, args, kwargs, ["value"])
        return Constant(unit(b["value"]))
    if name == "uniform":
        b = bind_args(name, args, kwargs, ["low", "high"])
        lo, hi = unit(b["low"]), unit(b["high"])
        if hi < lo:
            raise ValueError(f"uniform(A, B) needs A <= B (got {lo:g} > {hi:g})")
        return Uniform(lo, hi)
    if name in ("lognormal", "gamma"):
        b = bind_args(name, args, kwargs, ["mean", "cv"])
        mean = _positive(unit(b["mean"]), f"{name}() mean")
        cv = _cv(b["cv"])
        return LogNormal(mean, cv) if name == "lognormal" else Gamma(mean, cv)
    if name == "empirical":
        b = bind_args(name, args, kwargs, ["file"])
        path = Path(b["file"].strip("'\""))
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        arr = load_column(path)
        return Empirical(tuple(float(x) for x in arr), str(b["file"]))
    if name == "zipf":
        raise ValueError(f"zipf(S) describes key popularity, not a duration; use one of {_KINDS}")
    raise ValueError(f"unknown distribution {name!r}; allowed: {_KINDS}")


def parse_popularity(value: object) -> Zipf:
    """Parse a key-popularity law: ``zipf(S)`` (``uniform`` means ``zipf(0)``).

    Raises:
        ValueError: the value is not a popularity law.
    """
    if isinstance(value, Zipf):
        return value
    if isinstance(value, str):
        if value.strip() == "uniform":
            return Zipf(0.0)
        call = parse_call(value)
        if call is not None and call.name == "zipf":
            b = bind_args("zipf", call.args, call.kwargs, ["s"])
            try:
                s = float(b["s"])
            except ValueError:
                raise ValueError(f"zipf(S) needs a number (got {b['s']!r})") from None
            if s < 0:
                raise ValueError(f"zipf(S) needs S >= 0 (got {s:g})")
            return Zipf(s)
    raise ValueError(f"expected a popularity law like zipf(0.9) or uniform (got {value!r})")

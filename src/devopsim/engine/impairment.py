"""What both data planes accept as an impairment of a service (``set_impairment``)."""

from __future__ import annotations

__all__ = ["check_impairment"]


def check_impairment(delay: float, loss: float, cpu_factor: float, jitter: float) -> None:
    """Raise ``ValueError`` unless delay >= 0, 0 <= loss <= 1, cpu_factor > 0 and jitter >= 0."""
    if delay < 0.0 or not 0.0 <= loss <= 1.0 or cpu_factor <= 0.0 or jitter < 0.0:
        raise ValueError(
            "impairment needs delay >= 0, 0 <= loss <= 1, cpu_factor > 0 and jitter >= 0 "
            f"(got {delay}, {loss}, {cpu_factor}, {jitter})"
        )

"""The round-trip model against published inter-region latencies.

Truth: average round trips between AWS regions measured with cloudping
(the table "Latency Between AWS Global Regions", reproduced in
https://acomputerscientistlearnsaws.blogspot.com/2017/04/aws-regions.html),
milliseconds. The model is a first estimate from distance: it must have a
median error under 20 % and no pair off by more than half (routes that detour,
such as Singapore-Sydney or Ireland-Singapore, are the worst).
"""

from __future__ import annotations

import math
import statistics

import pytest

from devopsim.cloud.geo import (
    FIBRE_KM_PER_S,
    client_location,
    great_circle_km,
    region_location,
    rtt_s,
)

PUBLISHED_MS = {
    ("us-east-1", "us-west-1"): 72.74,
    ("us-east-1", "us-west-2"): 86.98,
    ("us-east-1", "eu-west-1"): 80.55,
    ("us-east-1", "eu-central-1"): 88.66,
    ("us-east-1", "ap-northeast-1"): 145.3,
    ("us-east-1", "ap-southeast-1"): 216.7,
    ("us-east-1", "ap-southeast-2"): 230.0,
    ("us-east-1", "sa-east-1"): 119.5,
    ("us-west-1", "us-west-2"): 19.46,
    ("eu-west-1", "eu-central-1"): 19.56,
    ("ap-northeast-1", "ap-southeast-1"): 73.79,
    ("ap-northeast-1", "ap-northeast-2"): 31.44,
    ("eu-west-1", "ap-southeast-1"): 239.0,
    ("us-west-2", "ap-northeast-1"): 89.1,
    ("ap-southeast-1", "ap-southeast-2"): 175.3,
    ("us-west-1", "ap-southeast-1"): 174.0,
}


def _aws(r: str):  # type: ignore[no-untyped-def]
    loc = region_location("aws", r)
    assert loc is not None, r
    return loc


def test_rtt_against_published_aws_pairs() -> None:
    errors = []
    for (a, b), ms in PUBLISHED_MS.items():
        model = rtt_s(_aws(a), _aws(b)) * 1000
        errors.append(abs(model - ms) / ms)
        assert abs(model - ms) / ms < 0.5, (a, b, model, ms)
    assert statistics.median(errors) < 0.2


def test_rtt_formula_and_distance() -> None:
    # Dublin - Frankfurt is about 1,090 km on the great circle (haversine, R = 6371 km).
    a, b = _aws("eu-west-1"), _aws("eu-central-1")
    d = great_circle_km(a, b)
    assert d == pytest.approx(1090, rel=0.02)
    assert rtt_s(a, b) == pytest.approx(2 * d * 1.5 / FIBRE_KM_PER_S + 0.003, rel=1e-12)
    # Antipodes: half the circumference.
    assert great_circle_km(a, type(a)("x", "", -a.lat, a.lon - 180)) == pytest.approx(math.pi * 6371.0088)


def test_every_region_of_the_examples_and_presets_is_known() -> None:
    for cloud, region in [
        ("aws", "us-east-1"),
        ("gcp", "europe-west1"),
        ("azure", "southeastasia"),
        ("azure", "westeurope"),
        ("digitalocean", "nyc3"),
        ("digitalocean", "sgp1"),
    ]:
        assert region_location(cloud, region) is not None
    for client in ("north-america", "europe", "asia", "us-east-1", "aws/eu-west-1"):
        assert client_location(client) is not None
    assert client_location("atlantis") is None

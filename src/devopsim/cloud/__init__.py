"""Multi-cloud: where regions and clients are, and the global front door (GeoDNS or anycast)."""

from devopsim.cloud.frontdoor import FrontDoorModel, failover_expectation, stale_share
from devopsim.cloud.geo import Location, client_location, great_circle_km, region_location, rtt_s

__all__ = [
    "FrontDoorModel",
    "Location",
    "client_location",
    "failover_expectation",
    "great_circle_km",
    "region_location",
    "rtt_s",
    "stale_share",
]

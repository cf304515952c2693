"""Incidents: every fault and SLO breach with its start, detection, mitigation and recovery; MTTD, MTTR."""

from devopsim.incidents.build import Interval, build_incidents
from devopsim.incidents.loop import IncidentsLoop

__all__ = ["IncidentsLoop", "Interval", "build_incidents"]

"""devopsim: a fast, faithful digital twin of a microservice platform."""

__version__ = "0.1.0"

"""Prometheus metrics of the service: HTTP requests per route, analyses by outcome, analyzer stage times.

Why one module: counters must be process-wide singletons (the API middleware, the job runner and the Celery
task all add to the same ones), and ``/metrics`` renders them with ``prometheus_client``'s text format.
"""

from __future__ import annotations

import logging

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

__all__ = [
    "HTTP_REQUESTS",
    "HTTP_SECONDS",
    "ANALYSES_SUBMITTED",
    "ANALYSES_FINISHED",
    "ANALYSES_RECOVERED",
    "ANALYSIS_SECONDS",
    "ANALYZER_SECONDS",
    "CONTENT_TYPE_LATEST",
    "render",
]

logger = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "vitalens_http_requests_total",
    "HTTP requests by method, route template and status code",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "vitalens_http_request_seconds",
    "HTTP request latency by route template (seconds)",
    ["method", "route"],
)
ANALYSES_SUBMITTED = Counter("vitalens_analyses_submitted_total", "Analyses queued, by job backend", ["backend"])
ANALYSES_FINISHED = Counter("vitalens_analyses_finished_total", "Analyses finished, by final status", ["status"])
ANALYSES_RECOVERED = Counter(
    "vitalens_analyses_recovered_total", "Interrupted analyses found at start-up, by action", ["action"]
)
ANALYSIS_SECONDS = Histogram(
    "vitalens_analysis_seconds",
    "Wall time of one analysis job (seconds)",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
ANALYZER_SECONDS = Histogram(
    "vitalens_analyzer_seconds",
    "Wall time of one analyzer stage (seconds)",
    ["analyzer", "status"],
    buckets=(0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
)


def render() -> bytes:
    """The current values in the Prometheus text exposition format."""
    return generate_latest()

"""Prometheus metrics in the text exposition format, without a client library: a few counters and one
histogram kept in this process, plus gauges read from the database when /metrics is scraped."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: LabelValues, extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Counter:
    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, labels
        self._values: dict[LabelValues, float] = defaultdict(float)
        self._lock = threading.Lock()

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        if amount:
            with self._lock:
                self._values[labels] += amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        with self._lock:
            items = sorted(self._values.items())
        for labels, value in items:
            yield f"{self.name}{_labels(self.label_names, labels)} {value:g}"


class Histogram:
    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, labels
        self._counts: dict[LabelValues, list[int]] = {}
        self._sums: dict[LabelValues, float] = defaultdict(float)
        self._lock = threading.Lock()

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            counts = self._counts.setdefault(labels, [0] * (len(self.BUCKETS) + 1))
            counts[bisect.bisect_left(self.BUCKETS, value)] += 1
            self._sums[labels] += value

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self._lock:
            items = sorted((labels, list(counts), self._sums[labels]) for labels, counts in self._counts.items())
        for labels, counts, total in items:
            cumulative = 0
            for bound, count in zip((*self.BUCKETS, float("inf")), counts, strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                bucket_labels = _labels(self.label_names, labels, 'le="' + le + '"')
                yield f"{self.name}_bucket{bucket_labels} {cumulative}"
            yield f"{self.name}_sum{_labels(self.label_names, labels)} {total:g}"
            yield f"{self.name}_count{_labels(self.label_names, labels)} {cumulative}"


RECORDS_INGESTED = Counter("tokentrail_records_ingested_total", "Usage records stored, by source", ("source",))
RECORDS_DUPLICATE = Counter("tokentrail_records_duplicate_total", "Redelivered usage records, by source", ("source",))
RECORDS_REJECTED = Counter("tokentrail_records_rejected_total", "Usage records refused, by source", ("source",))
RECORDS_SKIPPED = Counter("tokentrail_records_skipped_total", "Payload items without usage, by source", ("source",))
MATCHES = Counter(
    "tokentrail_match_results_total",
    "Records examined by matching, by the rule that matched (none: unmatched)",
    ("rule",),
)
WEBHOOKS = Counter("tokentrail_webhooks_total", "Webhook deliveries, by event and outcome", ("event", "outcome"))
JOBS_RUN = Counter("tokentrail_jobs_run_total", "Jobs run by the worker, by kind and outcome", ("kind", "outcome"))
GITHUB_CALLS = Counter("tokentrail_github_calls_total", "Calls to GitHub's API, by verb", ("verb",))
GITHUB_ERRORS = Counter(
    "tokentrail_github_errors_total", "Failed calls to GitHub's API, by verb and status", ("verb", "status")
)
REQUEST_SECONDS = Histogram(
    "tokentrail_http_request_duration_seconds", "HTTP request latency, by route", ("method", "route", "status")
)

ALL = (
    RECORDS_INGESTED,
    RECORDS_DUPLICATE,
    RECORDS_REJECTED,
    RECORDS_SKIPPED,
    MATCHES,
    WEBHOOKS,
    JOBS_RUN,
    GITHUB_CALLS,
    GITHUB_ERRORS,
    REQUEST_SECONDS,
)


def render_gauge(name: str, help_text: str, label: str, values: dict[str, int]) -> Iterable[str]:
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} gauge"
    for key, value in sorted(values.items()):
        yield f'{name}{{{label}="{_escape(key)}"}} {value}'


def render_all(gauges: Iterable[str] = ()) -> str:
    lines: list[str] = []
    for metric in ALL:
        lines.extend(metric.render())
    lines.extend(gauges)
    return "\n".join(lines) + "\n"

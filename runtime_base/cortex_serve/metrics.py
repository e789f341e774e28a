"""The replica's /metrics in Prometheus' text format (version 0.0.4), summed over every worker.

`cortex_in_flight_requests` is the autoscaling signal (Cortex scaled on in-flight requests per
replica against `target_replica_concurrency`).
"""

from __future__ import annotations

from .scoreboard import BATCH_BUCKETS, LATENCY_BUCKETS, VALUE_BUCKETS, Scoreboard, Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def _histogram(
    lines: list[str],
    name: str,
    labels: str,
    bounds: tuple[float, ...],
    counts: list[int],
    total: float,
) -> None:
    edges: tuple[float | str, ...] = (*bounds, "+Inf")
    for bound, count in zip(edges, counts, strict=True):
        le = bound if isinstance(bound, str) else _number(bound)
        lines.append(f'{name}_bucket{{{labels},le="{le}"}} {count}')
    lines.append(f"{name}_sum{{{labels}}} {_number(total)}")
    lines.append(f"{name}_count{{{labels}}} {counts[-1]}")


def render(
    scoreboard: Scoreboard, api_name: str, tracker: dict | None, batching: bool = False
) -> str:
    """`batching`: the API's predictor runs this runtime's server-side batching (batching.py)."""
    snap: Snapshot = scoreboard.snapshot()
    api = f'api="{_escape(api_name)}"'
    lines = [
        "# HELP cortex_requests_total Prediction requests answered, by HTTP status.",
        "# TYPE cortex_requests_total counter",
    ]
    for status, count in sorted(snap.statuses.items()):
        lines.append(f'cortex_requests_total{{{api},status="{status}"}} {count}')
    lines += [
        "# HELP cortex_request_duration_seconds Time from admission to the response's last byte.",
        "# TYPE cortex_request_duration_seconds histogram",
    ]
    _histogram(
        lines,
        "cortex_request_duration_seconds",
        api,
        LATENCY_BUCKETS,
        snap.latency_buckets,
        snap.latency_sum,
    )
    lines += [
        "# HELP cortex_in_flight_requests Prediction requests in flight in this replica.",
        "# TYPE cortex_in_flight_requests gauge",
        f"cortex_in_flight_requests{{{api}}} {snap.in_flight}",
        "# HELP cortex_max_replica_concurrency In flight past this, the replica answers 503.",
        "# TYPE cortex_max_replica_concurrency gauge",
        f"cortex_max_replica_concurrency{{{api}}} {scoreboard.max_concurrency}",
        "# HELP cortex_processes_ready Worker processes whose predictor is initialised.",
        "# TYPE cortex_processes_ready gauge",
        f"cortex_processes_ready{{{api}}} {snap.processes_ready}",
        "# HELP cortex_processes Worker processes configured (processes_per_replica).",
        "# TYPE cortex_processes gauge",
        f"cortex_processes{{{api}}} {scoreboard.processes}",
    ]
    if batching:
        lines += [
            "# HELP cortex_batch_size Requests per batch handed to predict (server_side_batching).",
            "# TYPE cortex_batch_size histogram",
        ]
        _histogram(
            lines, "cortex_batch_size", api, BATCH_BUCKETS, snap.batch_buckets, snap.batch_sum
        )
    if tracker and tracker.get("model_type") == "classification":
        lines += [
            "# HELP cortex_prediction_total Predictions, by predicted class (tracker).",
            "# TYPE cortex_prediction_total counter",
        ]
        for label, count in sorted(snap.classes.items()):
            lines.append(f'cortex_prediction_total{{{api},class="{_escape(label)}"}} {count}')
    elif tracker and tracker.get("model_type") == "regression":
        lines += [
            "# HELP cortex_prediction_value Predicted values (tracker).",
            "# TYPE cortex_prediction_value histogram",
        ]
        _histogram(
            lines,
            "cortex_prediction_value",
            api,
            VALUE_BUCKETS,
            snap.value_buckets,
            snap.value_sum,
        )
    return "\n".join(lines) + "\n"

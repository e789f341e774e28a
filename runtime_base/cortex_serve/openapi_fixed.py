"""The parts of the OpenAPI document that are the same for every API: the operations of /healthz
and /metrics, the JSON error response, the component schemas (Error, Summary) and the
table of how a payload is read."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
TEXT_SCHEMA = {"type": "string"}

PAYLOAD_RULES = (
    "What the predictor receives as `payload`, by the request's Content-Type:\n\n"
    "| Content-Type | `payload` |\n"
    "|---|---|\n"
    "| `application/json` | the parsed JSON (invalid JSON: 400) |\n"
    "| `text/plain` | a `str`, decoded with the request's charset (default UTF-8; undecodable: "
    "400) |\n"
    "| `multipart/form-data`, `application/x-www-form-urlencoded` | a starlette `FormData` "
    "(unparsable: 400) |\n"
    "| anything else, or none | the body's `bytes` |\n"
)


def error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def healthz_operation() -> dict[str, Any]:
    return {
        "tags": ["server"],
        "operationId": "get_healthz",
        "summary": "Readiness of the replica",
        "responses": {
            "200": {
                "description": "Every process of the replica has initialised its predictor.",
                "content": {"text/plain": {"schema": TEXT_SCHEMA, "example": "ok\n"}},
            },
            "503": {
                "description": "Not every process has initialised its predictor yet.",
                "content": {
                    "text/plain": {
                        "schema": TEXT_SCHEMA,
                        "example": "initialising: 1 of 2 processes ready\n",
                    }
                },
            },
        },
    }


def metrics_operation() -> dict[str, Any]:
    return {
        "tags": ["server"],
        "operationId": "get_metrics",
        "summary": "Prometheus metrics of the replica",
        "description": "Prometheus text format 0.0.4, summed over the replica's processes: "
        "`cortex_requests_total{status}`, `cortex_request_duration_seconds`, "
        "`cortex_in_flight_requests`, `cortex_max_replica_concurrency`, `cortex_processes_ready`,"
        " `cortex_processes`, and the tracker's metrics when the API has one.",
        "responses": {
            "200": {
                "description": 'The metrics, labelled `api="<name>"`.',
                "content": {"text/plain": {"schema": TEXT_SCHEMA}},
            }
        },
    }


def component_schemas() -> dict[str, Any]:
    return {
        "Error": {
            "type": "object",
            "required": ["error", "status"],
            "properties": {
                "error": {"type": "string", "description": "what went wrong"},
                "status": {"type": "integer", "description": "the HTTP status, again"},
                "detail": {"description": "the detail of an HTTPException the predictor raised"},
            },
        },
        "Summary": {
            "type": "object",
            "required": ["message", "api", "endpoint", "predictor"],
            "properties": {
                "message": {"type": "string"},
                "api": {"type": "string"},
                "endpoint": {"type": "string"},
                "predictor": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "enum": ["python", "tensorflow", "onnx"]},
                        "interface": {"type": "string"},
                        "processes_per_replica": {"type": "integer"},
                        "threads_per_process": {"type": "integer"},
                    },
                },
            },
        },
    }

"""The OpenAPI document of one API (GET /openapi.json, rendered by GET /docs: docs.py).

`build_openapi(spec, predictor)` is a pure function of api.json (as a dict) and the loaded
predictor: the routes the runtime answers (POST /predict and POST <endpoint>, their GET summary,
or one operation per verb a v0.34-v0.35 Handler answers; /healthz, /metrics), which of
`payload`, `query_params` and `headers` the user's predict or handle_<verb> names (loaded
predictors record them: `predict_args`, `VerbMethod.args`), how a payload is read by Content-Type
and a return value answered (text/plain for a `str` from Cortex v0.16, a JSON string before:
api.json's cortex.string_response), server_side_batching, and the JSON errors. It says nothing of
predictor.config or env: they may hold secrets.

Version: OpenAPI 3.0.3, written only with what 3.0 and 3.1 both accept (no `nullable`, no lists
of types, `format: binary` strings), so that OPENAPI_VERSION = "3.1.0" is the whole change once
the packaged Swagger UI renders 3.1: that takes swagger-ui 5, and the newest swagger-ui-bundle
(1.1.0) ships 4.15.5, which refuses a 3.1 document. The tests validate the document as both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .batching import runtime_batching
from .contract import HANDLER_CLASS, HANDLER_METHODS, PREDICTOR_CLASSES
from .openapi_fixed import (
    PAYLOAD_RULES,
    TEXT_SCHEMA,
    component_schemas,
    error_response,
    healthz_operation,
    metrics_operation,
)
from .predictor import REQUEST_ARGS

OPENAPI_VERSION = "3.0.3"

_ANY: dict[str, Any] = {}  # any JSON value
_BINARY = {"type": "string", "format": "binary"}


def build_openapi(
    spec: Mapping[str, Any], predictor: Any, max_body_bytes: int | None = None
) -> dict[str, Any]:
    """The OpenAPI document of the API `spec` (api.json) served by `predictor` (load_predictor's
    result); `max_body_bytes`, when given, is the body limit the 413 names."""
    api = _Api(spec, predictor, max_body_bytes)
    paths: dict[str, Any] = {}
    for path in api.prediction_paths:
        paths[path] = api.prediction_path_item(path)
    paths["/healthz"] = {"get": healthz_operation()}
    paths["/metrics"] = {"get": metrics_operation()}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": api.name,
            "version": f"Cortex {api.cortex.get('assumed') or ''}".strip(),
            "description": api.description(),
        },
        "tags": [
            {"name": "prediction", "description": "the API's predictor"},
            {"name": "server", "description": "readiness and metrics of the replica"},
        ],
        "paths": paths,
        "components": {"schemas": component_schemas()},
        "x-cortex": api.extension(),
    }


class _Api:
    """What build_openapi reads from api.json and the predictor, in one place."""

    def __init__(self, spec: Mapping[str, Any], predictor: Any, max_body_bytes: int | None):
        self.spec = spec
        self.predictor = predictor
        self.max_body_bytes = max_body_bytes
        self.name = str(spec["name"])
        self.endpoint = str(spec["endpoint"])
        self.predictor_spec: Mapping[str, Any] = spec["predictor"]
        self.type = str(self.predictor_spec["type"])
        self.interface = str(
            getattr(predictor, "interface", None) or self.predictor_spec.get("interface", "class")
        )
        self.handler = self.interface == "handler"
        self.cortex: Mapping[str, Any] = spec.get("cortex") or {}
        self.strings_as_json = self.cortex.get("string_response") == "json"
        self.batching: Mapping[str, Any] | None = runtime_batching(self.predictor_spec)
        self.verbs: Mapping[str, Any] = getattr(predictor, "verbs", None) or {}
        self.prediction_paths = ["/predict"]
        if self.endpoint not in self.prediction_paths:
            self.prediction_paths.append(self.endpoint)
        self.slugs = _slugs(self.prediction_paths)
        processes = self.predictor_spec.get("processes_per_replica") or 1
        threads = self.predictor_spec.get("threads_per_process") or 1
        self.processes, self.threads = int(processes), int(threads)
        autoscaling = spec.get("autoscaling") or {}
        self.max_concurrency = autoscaling.get("max_replica_concurrency")

    # -- the prediction routes --------------------------------------------------------------------

    def prediction_path_item(self, path: str) -> dict[str, Any]:
        item: dict[str, Any] = {}
        if self.handler:
            for verb in self.verbs:  # in HANDLER_METHODS' order
                item[verb.lower()] = self.handler_operation(path, verb)
        else:
            item["get"] = self.summary_operation(path)
            item["post"] = self.predict_operation(path)
        return item

    def predict_operation(self, path: str) -> dict[str, Any]:
        args = tuple(getattr(self.predictor, "predict_args", REQUEST_ARGS))
        batched = self.batching is not None
        return self.operation(
            path,
            "POST",
            summary=f"A prediction: {self.callable_name('predict', args)}",
            args=args,
            parses_body=True,  # whether or not predict names payload (as Cortex did)
            batched=batched,
        )

    def handler_operation(self, path: str, verb: str) -> dict[str, Any]:
        method = self.verbs[verb]
        args = tuple(getattr(method, "args", REQUEST_ARGS))
        name = f"{HANDLER_CLASS}.{HANDLER_METHODS[verb]}"
        return self.operation(
            path,
            verb,
            summary=f"{name}({', '.join(args)})",
            args=args,
            # Cortex v0.34-v0.35 parsed the body only for a method that names payload
            parses_body=bool(getattr(method, "wants_payload", True)),
            batched=verb == "POST" and self.batching is not None,
        )

    def operation(
        self,
        path: str,
        verb: str,
        *,
        summary: str,
        args: Sequence[str],
        parses_body: bool,
        batched: bool,
    ) -> dict[str, Any]:
        notes = []
        if path != "/predict":
            notes.append("The same as `/predict`.")
        if "headers" in args:
            notes.append("The predictor receives the request's headers (a starlette `Headers`).")
        if batched:
            assert self.batching is not None
            notes.append(
                f"**server_side_batching**: the predictor receives a list of up to "
                f"{self.batching.get('max_batch_size')} payloads (of as many requests, each "
                f"waiting at most {self.batching.get('batch_interval')} s past a running batch) "
                "and returns a list of the same length; each request still sends one payload "
                "and gets its own entry."
            )
        if not self.handler and getattr(self.predictor, "has_post_predict", False):
            notes.append("`post_predict` runs after the response is sent.")
        if self.handler:
            notes.append(
                "A returned `(response, callback)` sends `response`, then runs `callback()`."
            )
        operation: dict[str, Any] = {
            "tags": ["prediction"],
            "operationId": f"{verb.lower()}_{self.slugs[path]}",
            "summary": summary,
            "description": " ".join(notes) or summary,
            "parameters": self.parameters(args),
        }
        if parses_body:
            operation["requestBody"] = self.request_body("payload" in args, batched)
        operation["responses"] = self.responses(parses_body, batched)
        return operation

    def parameters(self, args: Sequence[str]) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = []
        if "query_params" in args:
            parameters.append(
                {
                    "name": "query_params",
                    "in": "query",
                    "required": False,
                    "description": "Every query parameter, as the predictor's `query_params` (a "
                    "starlette `QueryParams`).",
                    "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                    "style": "form",
                    "explode": True,
                    "example": {},  # else Swagger UI fills in (and sends) additionalProp1...
                }
            )
        parameters.append(
            {
                "name": "debug",
                "in": "query",
                "required": False,
                "description": "`true`: the server logs the payload and the prediction.",
                "schema": {"type": "boolean"},
            }
        )
        return parameters

    def request_body(self, wants_payload: bool, batched: bool) -> dict[str, Any]:
        description = PAYLOAD_RULES
        if not wants_payload:
            description = (
                "The predictor does not name `payload`, so it receives none; the body is still "
                "read, and one that does not parse as its Content-Type says is a 400.\n\n"
                + description
            )
        if batched:
            description += "\nOne payload per request: the server makes the lists."
        return {
            "required": False,
            "description": description,
            "content": {
                # Swagger UI's body for an untyped schema would be "string"; {} is JSON too.
                "application/json": {"schema": _ANY, "example": {}},
                "text/plain": {"schema": TEXT_SCHEMA},
                "multipart/form-data": {"schema": {"type": "object"}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                "application/octet-stream": {"schema": _BINARY},
            },
        }

    def responses(self, parses_body: bool, batched: bool) -> dict[str, Any]:
        what = "the entry of the list predict returned for this request" if batched else None
        what = what or "what the predictor returned"
        strings = (
            "a `str` as a JSON string (Cortex v0.9-v0.15)"
            if self.strings_as_json
            else "a `str` as `text/plain; charset=utf-8`"
        )
        ok: dict[str, Any] = {
            "description": (
                f"The prediction, {what}: {strings}; `bytes` as `application/octet-stream`; "
                "anything else as JSON (numpy arrays and scalars converted). A starlette "
                "`Response` is sent as it is, whatever its status and type."
            ),
            "content": {"application/json": {"schema": _ANY}},
        }
        if not self.strings_as_json:
            ok["content"]["text/plain"] = {"schema": TEXT_SCHEMA}
        ok["content"]["application/octet-stream"] = {"schema": _BINARY}
        limit = (
            f"{self.max_body_bytes} bytes"
            if self.max_body_bytes is not None
            else "CORTEX_SERVE_MAX_BODY_BYTES"
        )
        responses: dict[str, Any] = {"200": ok}
        if parses_body:
            responses["400"] = error_response("The body does not parse as its Content-Type says.")
        responses["408"] = error_response(
            "The body did not arrive within the server's read timeout (the connection is closed)."
        )
        responses["413"] = error_response(
            f"The body is larger than the limit ({limit}; the connection is closed)."
        )
        responses["500"] = error_response(
            'The predictor raised, or returned what cannot be sent: `{"error": '
            '"<ExceptionType>: <message>", "status": 500}` (the traceback is in the log).'
        )
        concurrency = (
            f"max_replica_concurrency ({self.max_concurrency})"
            if self.max_concurrency is not None
            else "max_replica_concurrency"
        )
        responses["503"] = error_response(
            f"More requests in flight than {concurrency}, counted across the replica's "
            "processes (rejected at once, never queued); or the predictor is still "
            "initialising."
        )
        responses["default"] = error_response(
            "A status of the predictor's choosing: starlette's `HTTPException` raised in it is "
            'answered `{"error": detail, "status": code, "detail": detail}`.'
        )
        return responses

    def summary_operation(self, path: str) -> dict[str, Any]:
        return {
            "tags": ["prediction"],
            "operationId": f"get_{self.slugs[path]}",
            "summary": "A summary of the API",
            "responses": {
                "200": {
                    "description": "The API, its endpoint and its predictor.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Summary"}}
                    },
                }
            },
        }

    # -- what the predictor is ----------------------------------------------------------------

    def callable_name(self, method: str, args: Sequence[str]) -> str:
        if self.interface == "functions":
            return "predict(sample, metadata)"
        if self.interface == "handlers":
            return "pre_inference, the model, post_inference"
        owner = PREDICTOR_CLASSES.get(self.type, "PythonPredictor")
        return f"{owner}.{method}({', '.join(args)})"

    def description(self) -> str:
        releases = self.cortex.get("releases")
        assumed = self.cortex.get("assumed")
        lines = [f"Cortex API `{self.name}`, served by cortex-build's runtime"]
        if assumed:
            lines[0] += f" as Cortex {assumed} served it"
            if releases:
                lines[0] += f" (a config of Cortex {releases})"
        lines[0] += "."
        paths = " and ".join(f"`{path}`" for path in self.prediction_paths)
        if self.handler:
            verbs = ", ".join(self.verbs) or "none"
            lines.append(
                f"Predictions on {paths}: class `{HANDLER_CLASS}` ({self.type}) answers {verbs}, "
                "one `handle_<verb>` method each; any other method is a 405."
            )
        else:
            interface = {
                "class": f"class `{PREDICTOR_CLASSES.get(self.type, 'PythonPredictor')}`",
                "functions": "module functions `init` and `predict`",
                "handlers": "request handlers `pre_inference`/`post_inference` around the model",
            }.get(self.interface, self.interface)
            lines.append(
                f"Predictions: POST {paths} ({self.type} predictor, {interface}); GET on either "
                "is a summary of the API."
            )
        lines.append(
            f"{self.processes} process(es) x {self.threads} thread(s) per replica"
            + (
                f"; at most {self.max_concurrency} requests in flight per replica (503 past it)."
                if self.max_concurrency is not None
                else "."
            )
        )
        if self.batching is not None:
            lines.append(
                f"server_side_batching: up to {self.batching.get('max_batch_size')} requests "
                f"per call of the predictor, batch_interval {self.batching.get('batch_interval')}"
                " s."
            )
        lines.append(
            'Errors are JSON: `{"error": message, "status": code}`. `/healthz` tells '
            "readiness, `/metrics` the replica's Prometheus metrics."
        )
        return "\n\n".join(lines)

    def extension(self) -> dict[str, Any]:
        """x-cortex: the facts above, for programs (never config or env)."""
        predictor: dict[str, Any] = {
            "type": self.type,
            "interface": self.interface,
            "processes_per_replica": self.processes,
            "threads_per_process": self.threads,
        }
        if self.handler:
            predictor["verbs"] = {
                verb: list(getattr(method, "args", REQUEST_ARGS))
                for verb, method in self.verbs.items()
            }
        else:
            predictor["predict_args"] = list(getattr(self.predictor, "predict_args", REQUEST_ARGS))
        if self.batching is not None:
            predictor["server_side_batching"] = {
                "max_batch_size": self.batching.get("max_batch_size"),
                "batch_interval": self.batching.get("batch_interval"),
            }
        extension: dict[str, Any] = {
            "api": self.name,
            "endpoint": self.endpoint,
            "predictor": predictor,
            "string_response": "json" if self.strings_as_json else "text",
        }
        for key in ("releases", "assumed"):
            if self.cortex.get(key):
                extension[f"cortex_{key}"] = self.cortex[key]
        return extension


def _slugs(paths: Sequence[str]) -> dict[str, str]:
    """Each path's part of operationIds (`/iris-classifier`: iris_classifier), unique: an
    endpoint that differs from /predict only in punctuation (/predict/) gets a suffix."""
    slugs: dict[str, str] = {}
    for path in paths:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"
        while slug in slugs.values():
            slug += "_endpoint"
        slugs[path] = slug
    return slugs

import json
import os
import struct
from collections.abc import Mapping

from cortex_internal.lib.log import logger as cortex_logger
from iris_model import LinearModel, features_from_csv, features_from_float32, features_from_mapping
from starlette.responses import JSONResponse


class PythonPredictor:
    def __init__(self, config):
        self.model = LinearModel(config["model"])
        # from predictor.env in cortex.yaml
        self.decimals = int(os.environ.get("IRIS_PROBABILITY_DECIMALS", "4"))
        # from .env (see .env.example); empty or unset turns the feature off
        self.api_key = os.environ.get("IRIS_API_KEY", "")
        self.audit_file = os.environ.get("IRIS_AUDIT_FILE", "")

    def predict(self, payload, query_params, headers):
        if self.api_key and headers.get("x-api-key") != self.api_key:
            return JSONResponse({"error": "missing or wrong X-Api-Key header"}, status_code=401)
        try:
            if isinstance(payload, bytes):  # application/octet-stream (any other type)
                features = features_from_float32(payload)
            elif isinstance(payload, str):  # text/plain
                features = features_from_csv(payload)
            elif isinstance(payload, Mapping):  # a JSON object, or form data
                features = features_from_mapping(payload)
            else:
                raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)

        class_id, probabilities = self.model.predict(features)
        probabilities = [round(p, self.decimals) for p in probabilities]
        label = self.model.labels[class_id]
        if isinstance(payload, bytes):
            # the class id as one byte, then the probabilities as 3 little-endian float32
            return struct.pack("<B3f", class_id, *probabilities)
        if isinstance(payload, str):
            return label
        response = {"label": label}
        if query_params.get("probabilities") == "true":
            response["probabilities"] = dict(zip(self.model.labels, probabilities))
        return response

    def post_predict(self, response, payload):
        if isinstance(response, JSONResponse):  # an error answered above
            cortex_logger.warning("rejected", extra={"status": response.status_code})
            return
        label = response["label"] if isinstance(response, dict) else response
        if isinstance(label, bytes):
            label = self.model.labels[label[0]]
        cortex_logger.info("prediction", extra={"label": label, "payload": type(payload).__name__})
        if self.audit_file:
            with open(self.audit_file, "a") as audit:
                audit.write(json.dumps({"label": label}) + "\n")

"""The API container: POST / with iris measurements answers a label; GET /healthz is ready once
the sidecar answers on localhost (both containers share the pod's network)."""

import argparse
import json
import os
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def labels(url: str) -> list[str]:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.load(response)


class Api(BaseHTTPRequestHandler):
    labels_url = ""

    def answer(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != "/healthz":
            self.answer(404, {"error": "not found"})
            return
        try:
            labels(self.labels_url)
        except OSError as err:
            self.answer(503, {"error": f"the labels sidecar does not answer: {err}"})
            return
        self.answer(200, {"ok": True})

    def do_POST(self) -> None:
        if self.path != "/":
            self.answer(404, {"error": "not found"})
            return
        try:
            sample = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            petal_length = float(sample["petal_length"])
        except (ValueError, KeyError, TypeError):
            self.answer(400, {"error": 'expected JSON like {"petal_length": 1.4}'})
            return
        names = labels(self.labels_url)
        index = 0 if petal_length < 2.5 else 1 if petal_length < 4.9 else 2
        self.answer(200, {"label": names[index], "greeting": os.environ.get("GREETING", "")})

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=int(os.environ.get("CORTEX_PORT", "8080")))
    parser.add_argument("--labels-url", default="http://localhost:9090/labels")
    options = parser.parse_args()
    Api.labels_url = options.labels_url
    ThreadingHTTPServer(("0.0.0.0", options.port), Api).serve_forever()

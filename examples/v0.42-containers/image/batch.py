"""The BatchAPI container: POST / takes one batch (a JSON array of {"petal_length": ...}) and
logs its labels; POST /on-job-complete, once the job's batches are done, logs the totals."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTS: dict[str, int] = {}
LOCK = threading.Lock()


def label(petal_length: float) -> str:
    return "setosa" if petal_length < 2.5 else "versicolor" if petal_length < 4.9 else "virginica"


class Batches(BaseHTTPRequestHandler):
    def answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.answer(200 if self.path == "/healthz" else 404)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        job = self.headers.get("X-Cortex-Job-ID", "")
        if self.path == "/on-job-complete":
            print(json.dumps({"job": job, "counts": dict(sorted(COUNTS.items()))}), flush=True)
            self.answer(200)
            return
        try:
            labels = [label(float(item["petal_length"])) for item in json.loads(body)]
        except (ValueError, KeyError, TypeError):
            self.answer(400)
            return
        with LOCK:
            for name in labels:
                COUNTS[name] = COUNTS.get(name, 0) + 1
        print(f"job {job}: batch {self.headers.get('X-Cortex-Batch-Id')}: {labels}", flush=True)
        self.answer(200)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(os.environ.get("CORTEX_PORT", "8080"))
    ThreadingHTTPServer(("0.0.0.0", port), Batches).serve_forever()

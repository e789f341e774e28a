"""The sidecar: serves the label names on localhost:PORT/labels; `--check PORT` is its probe."""

import json
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LABELS = ["setosa", "versicolor", "virginica"]


class Labels(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/labels":
            self.send_error(404)
            return
        body = json.dumps(LABELS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[2]}/labels", timeout=2)
        sys.exit(0)
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Labels).serve_forever()

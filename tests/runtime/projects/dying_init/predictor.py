"""Test predictor whose constructor ends its own process, as the OOM killer or a C extension
would: `config["death"]` is "sigkill" (killed by SIGKILL) or "exit0" (os._exit(0))."""

import os
import signal


class PythonPredictor:
    def __init__(self, config):
        if config["death"] == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(0)

    def predict(self, payload):
        return payload

# v0.2x with async def predict and async post_predict (run on the event loop).
import asyncio

seen = []


class PythonPredictor:
    def __init__(self, config):
        self.prefix = config.get("prefix", "")

    async def predict(self, query_params, payload):
        await asyncio.sleep(0)
        return self.prefix + payload + query_params.get("suffix", "")

    async def post_predict(self, response, headers):
        seen.append((response, headers.get("x-id")))

"""Server-side batching over real HTTP under concurrency: every caller gets its own answer.

Real servers (`python -m cortex_serve`, gunicorn + uvicorn) on loopback, many callers at once, each
with an input of its own, so that a mixed-up or lost answer inside a batch shows.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import onnxruntime
import yaml
from cortex_build.config import load_project
from cortex_build.spec import BatchingSpec
from servers import PROJECTS, api_spec
from sklearn.datasets import load_iris

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def call_concurrently(callers: int, inputs: list, call) -> list:
    """`call(client, input)` for every input, from `callers` threads each with its own
    keep-alive connection; results in the order of `inputs`."""

    def run(index: int) -> list:
        with httpx.Client(timeout=30) as client:
            return [(i, call(client, inputs[i])) for i in range(index, len(inputs), callers)]

    with ThreadPoolExecutor(callers) as pool:
        pairs = [pair for chunk in pool.map(run, range(callers)) for pair in chunk]
    return [result for _, result in sorted(pairs, key=lambda pair: pair[0])]


def test_batch_doubler_every_caller_gets_its_own_answer(start_server):
    batching = BatchingSpec(max_batch_size=8, batch_interval=0.005)
    spec = api_spec("batch", threads=2, config={"delay": 0.01}, server_side_batching=batching)
    server = start_server(PROJECTS / "batch_doubler", spec)
    values = list(range(400))

    answers = call_concurrently(
        32, values, lambda client, value: client.post(server.url(), json=value).json()
    )

    assert [answer["doubled"] for answer in answers] == [value * 2 for value in values]
    sizes = [answer["batch_size"] for answer in answers]
    assert max(sizes) <= 8
    assert max(sizes) > 1  # requests did go through predict together


def test_onnx_iris_example_with_batching_answers_every_caller_with_its_own_sample(
    start_server, tmp_path
):
    project = tmp_path / "onnx-iris"
    shutil.copytree(EXAMPLES / "onnx-iris", project)
    config_file = project / "cortex.yaml"
    apis = yaml.safe_load(config_file.read_text())
    apis[0]["predictor"]["server_side_batching"] = {"max_batch_size": 16, "batch_interval": "5ms"}
    config_file.write_text(yaml.safe_dump(apis, sort_keys=False))
    (spec,) = load_project(project).apis
    assert spec.predictor.server_side_batching is not None
    server = start_server(project, spec)

    # The 150 iris samples (twice), and what the model itself says of each.
    data = load_iris().data.astype(np.float32)
    session = onnxruntime.InferenceSession(str(project / "model" / "1" / "model.onnx"))
    class_ids, probabilities = session.run(None, {session.get_inputs()[0].name: data})
    labels = apis[0]["predictor"]["config"]["labels"]
    samples = [dict(zip(FEATURES, map(float, row), strict=True)) for row in data] * 2
    expected = [
        (labels[int(c)], [float(p) for p in row])
        for c, row in zip(class_ids, probabilities, strict=True)
    ]
    expected *= 2

    answers = call_concurrently(
        24, samples, lambda client, sample: client.post(server.url(), json=sample)
    )

    assert [answer.status_code for answer in answers] == [200] * len(samples)
    for answer, (label, probs) in zip(answers, expected, strict=True):
        body = answer.json()
        assert body["label"] == label
        # the predictor rounds to 4 places; batches of other sizes may differ in the last bit
        assert np.allclose(body["probabilities"], probs, atol=2e-4), (body, probs)

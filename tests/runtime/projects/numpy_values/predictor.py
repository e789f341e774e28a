"""Test predictor returning numpy scalars, as model outputs usually are: `?kind=` picks one."""

import numpy as np


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload, query_params):
        kind = query_params["kind"]
        values = {
            "int64": np.int64(2),
            "float32": np.float32(2.5),
            "float64": np.float64(-20.0),
            "bool": np.bool_(True),
            "str": np.str_("cat"),
            "array0d": np.array(7),
        }
        return {"value": values[kind]}

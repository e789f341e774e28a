"""The field tables of cortex.yaml (every generation at once) and the value grammars they use.

One table per section lists every key any generation accepted there. A key whose name changed
carries `target` (the dotted path it is read as in the newest schema, e.g. `compute.min_replicas`
-> `autoscaling.min_replicas`) and `old=True`, so the loader can note the mapping. Ranges here are
Cortex v0.26's (docs/config-reference.md); cross-field rules live in the config package.

What a field is: fields.py; the grammars of values: values.py; the tables of an API of predictor
code: predictor.py (its predictor section and models) and api.py (the rest); of a traffic
splitter: splitter.py; of v0.36+'s APIs of containers: containers.py. Everything is imported from
here, `schema.API`, `schema.parse_cpu`.
"""

from __future__ import annotations

from .api import (
    API as API,
    API_KINDS as API_KINDS,
    ASYNC_API_MESSAGE as ASYNC_API_MESSAGE,
    AUTOSCALING as AUTOSCALING,
    AUTOSCALING_DEFAULTS as AUTOSCALING_DEFAULTS,
    COMPUTE as COMPUTE,
    DEPLOYMENT as DEPLOYMENT,
    JOB_KINDS as JOB_KINDS,
    MODEL_TYPES as MODEL_TYPES,
    NETWORKING as NETWORKING,
    OLD_KINDS as OLD_KINDS,
    REALTIME_KINDS as REALTIME_KINDS,
    TRACKER as TRACKER,
    UNSUPPORTED_KINDS as UNSUPPORTED_KINDS,
    UPDATE_STRATEGY as UPDATE_STRATEGY,
    V09_API_KEYS as V09_API_KEYS,
    autoscaling_defaults as autoscaling_defaults,
    sections_with_key as sections_with_key,
)
from .containers import (
    CONTAINER as CONTAINER,
    CONTAINER_API as CONTAINER_API,
    CONTAINER_API_KINDS as CONTAINER_API_KINDS,
    CONTAINER_AUTOSCALING as CONTAINER_AUTOSCALING,
    CONTAINER_COMPUTE as CONTAINER_COMPUTE,
    DEFAULT_POD_PORT as DEFAULT_POD_PORT,
    POD as POD,
    PORT_FIELD as PORT_FIELD,
    PRE_STOP as PRE_STOP,
    PROBE as PROBE,
)
from .fields import (
    Field as Field,
    old_name as old_name,
    section as section,
)
from .predictor import (
    BATCHING as BATCHING,
    DEFINITION as DEFINITION,
    DEPENDENCIES as DEPENDENCIES,
    HANDLER as HANDLER,
    HANDLER_ONNX as HANDLER_ONNX,
    HANDLER_TENSORFLOW as HANDLER_TENSORFLOW,
    LOG_LEVELS as LOG_LEVELS,
    MODEL_PATH_ITEM as MODEL_PATH_ITEM,
    MODELS as MODELS,
    PREDICTOR as PREDICTOR,
    TYPES as TYPES,
)
from .splitter import (
    SPLITTER as SPLITTER,
    SPLITTER_BACKEND as SPLITTER_BACKEND,
    SPLITTER_KIND as SPLITTER_KIND,
    SPLITTER_NETWORKING as SPLITTER_NETWORKING,
)
from .values import (
    API_NAME_MAX as API_NAME_MAX,
    CPU_HINT as CPU_HINT,
    DNS_1035 as DNS_1035,
    DURATION_HINT as DURATION_HINT,
    ENDPOINT as ENDPOINT,
    ENV_KEY as ENV_KEY,
    IMAGE_REF as IMAGE_REF,
    IMAGE_REF_MAX as IMAGE_REF_MAX,
    INT_OR_PERCENT_HINT as INT_OR_PERCENT_HINT,
    MAX_QUANTITY_BYTES as MAX_QUANTITY_BYTES,
    MAX_QUANTITY_SHOWN as MAX_QUANTITY_SHOWN,
    MODEL_NAME as MODEL_NAME,
    PORT_HINT as PORT_HINT,
    QUANTITY_HINT as QUANTITY_HINT,
    REMOTE_PATH as REMOTE_PATH,
    RESERVED_ENDPOINTS as RESERVED_ENDPOINTS,
    RESERVED_ENV_PREFIX as RESERVED_ENV_PREFIX,
    ROLLOUT_STALLS as ROLLOUT_STALLS,
    SAFE_PATH as SAFE_PATH,
    SAFE_PATH_HINT as SAFE_PATH_HINT,
    TAG as TAG,
    BadValue as BadValue,
    cpu_millicores as cpu_millicores,
    is_api_name as is_api_name,
    is_image_ref as is_image_ref,
    parse_cpu as parse_cpu,
    parse_duration as parse_duration,
    parse_int_or_percent as parse_int_or_percent,
    parse_port as parse_port,
    parse_quantity as parse_quantity,
    quantity_bytes as quantity_bytes,
    rollout_stalls as rollout_stalls,
)

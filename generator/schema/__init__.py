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
)
from .api import (
    API_KINDS as API_KINDS,
)
from .api import (
    ASYNC_API_MESSAGE as ASYNC_API_MESSAGE,
)
from .api import (
    AUTOSCALING as AUTOSCALING,
)
from .api import (
    AUTOSCALING_DEFAULTS as AUTOSCALING_DEFAULTS,
)
from .api import (
    COMPUTE as COMPUTE,
)
from .api import (
    DEPLOYMENT as DEPLOYMENT,
)
from .api import (
    JOB_KINDS as JOB_KINDS,
)
from .api import (
    MODEL_TYPES as MODEL_TYPES,
)
from .api import (
    NETWORKING as NETWORKING,
)
from .api import (
    OLD_KINDS as OLD_KINDS,
)
from .api import (
    REALTIME_KINDS as REALTIME_KINDS,
)
from .api import (
    TRACKER as TRACKER,
)
from .api import (
    UNSUPPORTED_KINDS as UNSUPPORTED_KINDS,
)
from .api import (
    UPDATE_STRATEGY as UPDATE_STRATEGY,
)
from .api import (
    V09_API_KEYS as V09_API_KEYS,
)
from .api import (
    autoscaling_defaults as autoscaling_defaults,
)
from .api import (
    sections_with_key as sections_with_key,
)
from .containers import (
    CONTAINER as CONTAINER,
)
from .containers import (
    CONTAINER_API as CONTAINER_API,
)
from .containers import (
    CONTAINER_API_KINDS as CONTAINER_API_KINDS,
)
from .containers import (
    CONTAINER_AUTOSCALING as CONTAINER_AUTOSCALING,
)
from .containers import (
    CONTAINER_COMPUTE as CONTAINER_COMPUTE,
)
from .containers import (
    DEFAULT_POD_PORT as DEFAULT_POD_PORT,
)
from .containers import (
    POD as POD,
)
from .containers import (
    PORT_FIELD as PORT_FIELD,
)
from .containers import (
    PRE_STOP as PRE_STOP,
)
from .containers import (
    PROBE as PROBE,
)
from .fields import (
    Field as Field,
)
from .fields import (
    old_name as old_name,
)
from .fields import (
    section as section,
)
from .predictor import (
    BATCHING as BATCHING,
)
from .predictor import (
    DEFINITION as DEFINITION,
)
from .predictor import (
    DEPENDENCIES as DEPENDENCIES,
)
from .predictor import (
    HANDLER as HANDLER,
)
from .predictor import (
    HANDLER_ONNX as HANDLER_ONNX,
)
from .predictor import (
    HANDLER_TENSORFLOW as HANDLER_TENSORFLOW,
)
from .predictor import (
    LOG_LEVELS as LOG_LEVELS,
)
from .predictor import (
    MODEL_PATH_ITEM as MODEL_PATH_ITEM,
)
from .predictor import (
    MODELS as MODELS,
)
from .predictor import (
    PREDICTOR as PREDICTOR,
)
from .predictor import (
    TYPES as TYPES,
)
from .splitter import (
    SPLITTER as SPLITTER,
)
from .splitter import (
    SPLITTER_BACKEND as SPLITTER_BACKEND,
)
from .splitter import (
    SPLITTER_KIND as SPLITTER_KIND,
)
from .splitter import (
    SPLITTER_NETWORKING as SPLITTER_NETWORKING,
)
from .values import (
    API_NAME_MAX as API_NAME_MAX,
)
from .values import (
    CPU_HINT as CPU_HINT,
)
from .values import (
    DNS_1035 as DNS_1035,
)
from .values import (
    DURATION_HINT as DURATION_HINT,
)
from .values import (
    ENDPOINT as ENDPOINT,
)
from .values import (
    ENV_KEY as ENV_KEY,
)
from .values import (
    IMAGE_REF as IMAGE_REF,
)
from .values import (
    IMAGE_REF_MAX as IMAGE_REF_MAX,
)
from .values import (
    INT_OR_PERCENT_HINT as INT_OR_PERCENT_HINT,
)
from .values import (
    MAX_QUANTITY_BYTES as MAX_QUANTITY_BYTES,
)
from .values import (
    MAX_QUANTITY_SHOWN as MAX_QUANTITY_SHOWN,
)
from .values import (
    MODEL_NAME as MODEL_NAME,
)
from .values import (
    PORT_HINT as PORT_HINT,
)
from .values import (
    QUANTITY_HINT as QUANTITY_HINT,
)
from .values import (
    REMOTE_PATH as REMOTE_PATH,
)
from .values import (
    RESERVED_ENDPOINTS as RESERVED_ENDPOINTS,
)
from .values import (
    RESERVED_ENV_PREFIX as RESERVED_ENV_PREFIX,
)
from .values import (
    SAFE_PATH as SAFE_PATH,
)
from .values import (
    SAFE_PATH_HINT as SAFE_PATH_HINT,
)
from .values import (
    TAG as TAG,
)
from .values import (
    BadValue as BadValue,
)
from .values import (
    cpu_millicores as cpu_millicores,
)
from .values import (
    is_api_name as is_api_name,
)
from .values import (
    is_image_ref as is_image_ref,
)
from .values import (
    is_zero_int_or_percent as is_zero_int_or_percent,
)
from .values import (
    parse_cpu as parse_cpu,
)
from .values import (
    parse_duration as parse_duration,
)
from .values import (
    parse_int_or_percent as parse_int_or_percent,
)
from .values import (
    parse_port as parse_port,
)
from .values import (
    parse_quantity as parse_quantity,
)
from .values import (
    quantity_bytes as quantity_bytes,
)

"""Which images an API is built on and named as: one place for every image reference."""

from __future__ import annotations

from cortex_serve.contract import MODEL_DIR

from .spec import TF_SERVING_GRPC_PORT, ApiSpec

# Where an image holds its API's models (/mnt/model/<name>), and where the TF Serving sidecar
# finds them.
# The image's unprivileged user (Dockerfile USER; Kubernetes' securityContext runs as it too).
USER_ID = 10001

# TF Serving's sidecar (compose service or Kubernetes container) reads the models from a volume
# that the API's image fills, through this script: one layout for both.
MODEL_STORE = "/mnt/model-store"  # the shared emptyDir, as the init container sees it
TF_MODEL_CONFIG = f"{MODEL_DIR}/models.config"
# Copies the image's models into the shared emptyDir and lists every model folder for TF Serving
# (also for `models.dir`, whose model names are only known once the image is built). TF Serving
# loads only numbered version folders: an unversioned SavedModel becomes version 1, as in Cortex.
COPY_MODELS_SCRIPT = f"""\
set -eu
cp -a {MODEL_DIR}/. {MODEL_STORE}/
{{
  echo 'model_config_list {{'
  for dir in {MODEL_STORE}/*/; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    if [ -f "$dir/saved_model.pb" ]; then
      mkdir "$dir/.version-1"
      find "$dir" -mindepth 1 -maxdepth 1 ! -name .version-1 -exec mv {{}} "$dir/.version-1/" \\;
      mv "$dir/.version-1" "$dir/1"
    fi
    echo "  config {{ name: '$name' base_path: '{MODEL_DIR}/$name' model_platform: 'tensorflow' \
model_version_policy {{ all {{}} }} }}"
  done
  echo '}}'
}} > {MODEL_STORE}/models.config
"""
# With server_side_batching TF Serving batches (`--enable_batching`), as in Cortex: the predictor
# gets one payload per request and its requests to TF Serving are what gets batched.
TF_BATCHING_CONFIG = f"{MODEL_DIR}/batching.config"


def tf_batching_config(api: ApiSpec) -> str | None:
    """TF Serving's batching parameters from `server_side_batching`, as Cortex set them: at most
    `max_batch_size` requests a batch, `batch_interval` the longest the first waits for others,
    one batch thread per predictor process. None without batching."""
    batching = api.predictor.server_side_batching
    if batching is None:
        return None
    micros = max(1, round(batching.batch_interval * 1_000_000))
    return (
        f"max_batch_size {{ value: {batching.max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {micros} }}\n"
        f"num_batch_threads {{ value: {api.predictor.processes_per_replica} }}\n"
    )


def copy_models_script(api: ApiSpec) -> str:
    """COPY_MODELS_SCRIPT, then the API's TF Serving batching parameters, if any, beside
    models.config."""
    config = tf_batching_config(api)
    if config is None:
        return COPY_MODELS_SCRIPT
    return f"{COPY_MODELS_SCRIPT}printf '%s' '{config}' > {MODEL_STORE}/batching.config\n"


# A base image must be Debian or Ubuntu with python3 >= 3.10 and its venv module, or with apt able
# to install them (the Dockerfile installs them when missing, as on the CUDA images).
PYTHON_CPU_BASE = "python:3.11-slim-bookworm"
# cuDNN runtime on Ubuntu 22.04 (python3.10 from apt): the smallest official CUDA image that
# onnxruntime-gpu and TensorFlow's GPU builds load on.
CUDA_BASE = "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"
TF_SERVING_VERSION = "2.16.1"
TF_SERVING_CPU = f"tensorflow/serving:{TF_SERVING_VERSION}"
TF_SERVING_GPU = f"tensorflow/serving:{TF_SERVING_VERSION}-gpu"


def base_image_for(api: ApiSpec, override: str | None = None) -> str:
    """`--base-image` beats `predictor.image`, which beats the default for the API's hardware.

    On TensorFlow APIs the GPU sits with the TF Serving sidecar (as in Cortex), so the predictor
    itself runs on the CPU base.
    """
    if override:
        return override
    if api.predictor.image:
        return api.predictor.image
    if api.compute.gpu > 0 and api.predictor.type != "tensorflow":
        return CUDA_BASE
    return PYTHON_CPU_BASE


def tf_serving_image_for(api: ApiSpec) -> str | None:
    """The TF Serving sidecar image, for tensorflow APIs only."""
    if api.predictor.type != "tensorflow":
        return None
    if api.predictor.tensorflow_serving_image:
        return api.predictor.tensorflow_serving_image
    return TF_SERVING_GPU if api.compute.gpu > 0 else TF_SERVING_CPU


def tf_serving_args(api: ApiSpec) -> list[str]:
    """Arguments of `tensorflow_model_server` in the sidecar (gRPC only, as Cortex ran it)."""
    concurrency = api.predictor.processes_per_replica * api.predictor.threads_per_process
    args = [
        f"--port={TF_SERVING_GRPC_PORT}",
        "--rest_api_port=0",
        f"--model_config_file={TF_MODEL_CONFIG}",
        # Cortex's setting: one stream per predictor thread, plus headroom.
        f"--grpc_channel_arguments=grpc.max_concurrent_streams={concurrency + 10}",
    ]
    if api.predictor.server_side_batching is not None:
        args += ["--enable_batching=true", f"--batching_parameters_file={TF_BATCHING_CONFIG}"]
    return args


def image_ref(api_name: str, registry: str | None = None, tag: str = "latest") -> str:
    """`<api>:<tag>` or `<registry>/<api>:<tag>`."""
    name = f"{registry.rstrip('/')}/{api_name}" if registry else api_name
    return f"{name}:{tag}"


# pip requirements the runtime needs per predictor type, beside its own. ONNX runs onnxruntime in
# process (the -gpu build on GPU; 1.19 is the first built for CUDA 12, as on CUDA_BASE).
# TensorFlow talks gRPC to the TF Serving sidecar, so the predictor image needs only a gRPC
# client, not TensorFlow. runtime_base/requirements.lock locks every one of these sets.
ONNX_PACKAGES = ("onnxruntime>=1.17", "numpy>=1.24")
ONNX_GPU_PACKAGES = ("onnxruntime-gpu>=1.19", "numpy>=1.24")
TENSORFLOW_PACKAGES = ("grpcio>=1.60", "protobuf>=4.25", "numpy>=1.24")
FRAMEWORK_PACKAGE_SETS = {
    "onnx": ONNX_PACKAGES,
    "onnx (GPU)": ONNX_GPU_PACKAGES,
    "tensorflow": TENSORFLOW_PACKAGES,
}


def framework_packages(api: ApiSpec) -> tuple[str, ...]:
    """pip requirements the runtime needs for the API's predictor type, beside its own."""
    if api.predictor.type == "onnx":
        return ONNX_GPU_PACKAGES if api.compute.gpu > 0 else ONNX_PACKAGES
    if api.predictor.type == "tensorflow":
        return TENSORFLOW_PACKAGES
    return ()

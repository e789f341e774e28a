#!/usr/bin/env bash
# Builds the local stand-in for `python:3.x-slim` that the Docker tests use, since no container
# registry can be reached here: Debian bookworm (debootstrap) + python3 + venv, plus the host's CA
# bundle at a path of its own (PIP_CERT), because pip inside a build must trust the host's proxy.
#
#   tests/docker_base/build-base-image.sh [IMAGE]     (default: cortex-build-test/python:3.11)
#
# Idempotent: does nothing when IMAGE already exists.
set -euo pipefail
image=${1:-cortex-build-test/python:3.11}
rootfs_image=cortex-build-test/debian:bookworm

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image already present"
  exit 0
fi

if ! docker image inspect "$rootfs_image" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { echo "debootstrap is needed: apt-get install -y debootstrap" >&2; exit 1; }
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  debootstrap --variant=minbase bookworm "$dir" >/dev/null
  tar -C "$dir" -c . | docker import - "$rootfs_image"
fi

ctx=$(mktemp -d)
cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca.crt"
cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM $rootfs_image
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY host-ca.crt /usr/local/share/cortex-build-test/host-ca.crt
ENV PIP_CERT=/usr/local/share/cortex-build-test/host-ca.crt \
    REQUESTS_CA_BUNDLE=/usr/local/share/cortex-build-test/host-ca.crt
DOCKERFILE
docker build -q -t "$image" "$ctx" >/dev/null
rm -rf "$ctx"
echo "built base image $image"

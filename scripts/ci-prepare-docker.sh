#!/usr/bin/env bash
# CI step before `cargo test`: make what tests/deploy_docker.rs needs on a fresh machine.
#   bash scripts/ci-prepare-docker.sh
# - no Docker engine: says so and exits 0 (the Docker tests then skip with that reason);
# - installs debootstrap from Debian's packages when missing;
# - makes the local base images (cached: skipped when the tags exist) and builds the daemon and
#   emulator images from deploy/Dockerfile (the layer cache makes a rebuild cheap).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "ci-prepare-docker: $*" >&2; }

if ! docker info >/dev/null 2>&1; then
    log "no Docker engine reachable: the Docker tests will skip"; exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
start=$(date +%s)
scripts/build-images.sh
log "images ready in $(( $(date +%s) - start )) s"

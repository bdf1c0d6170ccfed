#!/usr/bin/env bash
# Build the daemon and emulator images from deploy/Dockerfile, as the Docker tests and CI use them.
#   scripts/build-images.sh [--no-vendor]
# 1. makes the local base images when missing (scripts/make-bases.sh; no registry needed),
# 2. assembles a small build context (Cargo.toml, Cargo.lock, src/, config/, deploy/) so the
#    engine is not sent target/ (gigabytes),
# 3. docker build -f deploy/Dockerfile --target sim / (default: daemon).
# Crates are vendored into the context by default (`cargo vendor` on the host): containers on
# these machines cannot fetch them (see docs/deploy.md). --no-vendor lets cargo fetch them
# inside the build instead.
# Tags: $SIM_IMAGE (default tariscope-sim:local) and $SYNC_IMAGE (default tariscope-sync:local).
set -euo pipefail
cd "$(dirname "$0")/.."

SIM_IMAGE="${SIM_IMAGE:-tariscope-sim:local}"
SYNC_IMAGE="${SYNC_IMAGE:-tariscope-sync:local}"
VENDOR=1
if [[ "${1:-}" == "--no-vendor" ]]; then VENDOR=0; fi
log() { echo "build-images: $*" >&2; }

scripts/make-bases.sh

CTX=$(mktemp -d /var/tmp/tariscope-ctx.XXXXXX)
trap 'rm -rf "$CTX"' EXIT
cp -a Cargo.toml Cargo.lock src config "$CTX/"
mkdir -p "$CTX/deploy/cargo"
cp -a deploy/Dockerfile "$CTX/deploy/"
cp -a deploy/cargo/README.md "$CTX/deploy/cargo/"
if [[ $VENDOR == 1 ]]; then
    log "vendoring crates into the build context"
    cargo vendor --locked --versioned-dirs "$CTX/deploy/cargo/vendor" >"$CTX/deploy/cargo/config.toml.tmp"
    # cargo vendor prints the source replacement; point it at /src/.cargo/vendor in the image.
    sed 's#directory = .*#directory = "/src/.cargo/vendor"#' "$CTX/deploy/cargo/config.toml.tmp" \
        >"$CTX/deploy/cargo/config.toml"
    rm "$CTX/deploy/cargo/config.toml.tmp"
fi

log "docker build --target sim -> $SIM_IMAGE"
docker build --force-rm -f "$CTX/deploy/Dockerfile" --target sim -t "$SIM_IMAGE" "$CTX" >&2
log "docker build (daemon) -> $SYNC_IMAGE"
docker build --force-rm -f "$CTX/deploy/Dockerfile" -t "$SYNC_IMAGE" "$CTX" >&2
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^(${SIM_IMAGE}|${SYNC_IMAGE}) " >&2 || true

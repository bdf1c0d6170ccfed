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

# Skip the build when both images were built from exactly these inputs (sources, lock file,
# Dockerfile, base images): the label tariscope.inputs holds their hash.
INPUTS=$( {
    find Cargo.toml Cargo.lock src config benches deploy/Dockerfile deploy/cargo/README.md scripts/build-images.sh -type f -print0 \
        | sort -z | xargs -0 sha256sum
    docker image inspect -f '{{.Id}}' rust:1-slim-bookworm debian:bookworm-slim
    echo "vendor=$VENDOR"
} | sha256sum | cut -c1-32)
label() { docker image inspect -f '{{index .Config.Labels "tariscope.inputs"}}' "$1" 2>/dev/null || true; }
# An image built from these inputs under another tag (another work tree, or CI's prepare step)
# is reused by tagging it.
reuse() { # reuse TAG KIND
    [[ "$(label "$1")" == "$INPUTS" ]] && return 0
    local id
    id=$(docker images -q --filter "label=tariscope.inputs=$INPUTS" --filter "label=tariscope.image=$2" | head -n1)
    if [[ -n "$id" ]]; then docker tag "$id" "$1"; fi
}
reuse "$SIM_IMAGE" sim
reuse "$SYNC_IMAGE" sync
if [[ "$(label "$SIM_IMAGE")" == "$INPUTS" && "$(label "$SYNC_IMAGE")" == "$INPUTS" ]]; then
    log "$SIM_IMAGE and $SYNC_IMAGE are up to date (inputs $INPUTS)"; exit 0
fi

CTX=$(mktemp -d /var/tmp/tariscope-ctx.XXXXXX)
trap 'rm -rf "$CTX"' EXIT
cp -a Cargo.toml Cargo.lock src config benches "$CTX/"
mkdir -p "$CTX/deploy/cargo"
cp -a deploy/Dockerfile "$CTX/deploy/"
cp -a deploy/cargo/README.md "$CTX/deploy/cargo/"
if [[ $VENDOR == 1 ]]; then
    log "vendoring crates into the build context"
    cargo vendor --locked --versioned-dirs "$CTX/deploy/cargo/vendor" \
        >"$CTX/deploy/cargo/config.toml.tmp" 2>"$CTX/vendor.log" \
        || { tail -n 20 "$CTX/vendor.log" >&2; log "cargo vendor failed"; exit 1; }
    # cargo vendor prints the source replacement; point it at /src/.cargo/vendor in the image.
    sed 's#directory = .*#directory = "/src/.cargo/vendor"#' "$CTX/deploy/cargo/config.toml.tmp" \
        >"$CTX/deploy/cargo/config.toml"
    rm "$CTX/deploy/cargo/config.toml.tmp"
fi

log "docker build --target sim -> $SIM_IMAGE"
docker build --force-rm --label "tariscope.inputs=$INPUTS" --label tariscope.image=sim -f "$CTX/deploy/Dockerfile" --target sim -t "$SIM_IMAGE" "$CTX" >&2
log "docker build (daemon) -> $SYNC_IMAGE"
docker build --force-rm --label "tariscope.inputs=$INPUTS" --label tariscope.image=sync -f "$CTX/deploy/Dockerfile" -t "$SYNC_IMAGE" "$CTX" >&2
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^(${SIM_IMAGE}|${SYNC_IMAGE}) " >&2 || true

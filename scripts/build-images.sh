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
# Tags: $SIM_IMAGE (default tariscope-sim:local) and $SYNC_IMAGE (default tariscope-sync:local);
# with $DEBUG_IMAGE set, also the binaries' debug info (target debuginfo) under that tag.
# Progress goes to stderr, one line per step (the full build log is shown when a build fails);
# one build at a time on this machine (a lock), so parallel test runs wait, then reuse.
set -euo pipefail
cd "$(dirname "$0")/.."

SIM_IMAGE="${SIM_IMAGE:-tariscope-sim:local}"
SYNC_IMAGE="${SYNC_IMAGE:-tariscope-sync:local}"
VENDOR=1
if [[ "${1:-}" == "--no-vendor" ]]; then VENDOR=0; fi
log() { echo "build-images: $*" >&2; }

scripts/make-bases.sh

LOCK="${BUILD_LOCK:-/tmp/tariscope-build-images.lock}"
exec 8>"$LOCK"
if ! flock -n 8; then
    log "another build of the images is running; waiting for it"
    flock 8
fi

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
if [[ -n "${DEBUG_IMAGE:-}" ]]; then reuse "$DEBUG_IMAGE" debuginfo; fi
if [[ "$(label "$SIM_IMAGE")" == "$INPUTS" && "$(label "$SYNC_IMAGE")" == "$INPUTS" \
      && ( -z "${DEBUG_IMAGE:-}" || "$(label "$DEBUG_IMAGE")" == "$INPUTS" ) ]]; then
    log "$SIM_IMAGE and $SYNC_IMAGE${DEBUG_IMAGE:+ and $DEBUG_IMAGE} are up to date (inputs $INPUTS)"; exit 0
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

# docker build, its steps on stderr as they start; the whole log only when it fails.
build() { # build TAG KIND [docker build args...]
    local tag=$1 kind=$2; shift 2
    local start=$SECONDS
    log "docker build $* -> $tag (the first build compiles every crate in release mode: minutes)"
    if ! docker build --force-rm --label "tariscope.inputs=$INPUTS" --label "tariscope.image=$kind" \
        -f "$CTX/deploy/Dockerfile" -t "$tag" "$@" "$CTX" 2>&1 \
        | tee "$CTX/build-$kind.log" | grep --line-buffered -E '^Step [0-9]+/[0-9]+ : ' \
        | sed -u -E 's/^(.{0,100}).*/build-images:   \1/' >&2; then
        :
    fi
    if ! docker image inspect "$tag" >/dev/null 2>&1 || [[ "$(label "$tag")" != "$INPUTS" ]]; then
        tail -n 60 "$CTX/build-$kind.log" >&2; log "docker build of $tag failed (log above)"; exit 1
    fi
    log "$tag built in $(( SECONDS - start )) s"
}
build "$SIM_IMAGE" sim --target sim
build "$SYNC_IMAGE" sync
# The binaries' debug info, stripped from both images, as an image of its own (from scratch:
# /tariscope-sync.debug, /tariscope-sim.debug) when $DEBUG_IMAGE names a tag.
if [[ -n "${DEBUG_IMAGE:-}" ]]; then build "$DEBUG_IMAGE" debuginfo --target debuginfo; fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
    | grep -E "^(${SIM_IMAGE}|${SYNC_IMAGE}${DEBUG_IMAGE:+|$DEBUG_IMAGE}) " >&2 || true

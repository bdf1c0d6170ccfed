#!/usr/bin/env bash
# Make the two base images deploy/Dockerfile starts FROM, locally, with no image registry:
#   debian:bookworm-slim   - a debootstrap'ed Debian 12 minbase (the runtime stage)
#   rust:1-slim-bookworm   - the same plus gcc/libc6-dev and this host's Rust toolchain (the build stage)
# Each tag is skipped when it already exists (pass --force to rebuild).
#
# Needs: root, docker, a Rust toolchain on the host, and debootstrap (installed here with
# apt-get when missing: a fresh machine needs no step before `cargo test`).
# The Debian mirror is read from apt's configured sources at run time (override: DEBIAN_MIRROR=URL).
set -euo pipefail

RUNTIME_TAG="${RUNTIME_TAG:-debian:bookworm-slim}"
BUILDER_TAG="${BUILDER_TAG:-rust:1-slim-bookworm}"
SUITE=bookworm
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

log() { echo "make-bases: $*" >&2; }

have_image() { [[ $FORCE == 0 ]] && docker image inspect "$1" >/dev/null 2>&1; }

mirror() {
    if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    # deb822 sources first, then one-line sources; skip the security archive.
    uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -v security | head -n1 || true)
    if [[ -z "$uri" ]]; then
        uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | grep -v security | awk '{for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | head -n1 || true)
    fi
    if [[ -z "$uri" ]]; then
        log "no Debian mirror found in /etc/apt/sources.list*; set DEBIAN_MIRROR=URL"; exit 1
    fi
    echo "$uri"
}

need() { command -v "$1" >/dev/null 2>&1 || { log "$1 is missing: $2"; exit 1; }; }

WORK=""
cleanup() { if [[ -n "$WORK" ]]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

bootstrap() { # bootstrap DIR [extra packages, comma separated]
    local dir=$1 include=${2:-}
    local cache="${BASES_CACHE:-/var/cache/tariscope-bases}/debs"
    mkdir -p "$cache"
    local args=(--variant=minbase --cache-dir="$cache")
    [[ -n "$include" ]] && args+=(--include="$include")
    log "debootstrap $SUITE into $dir (${include:-minbase})"
    debootstrap "${args[@]}" "$SUITE" "$dir" "$(mirror)" >"$dir.log" 2>&1 \
        || { tail -n 30 "$dir.log" >&2; log "debootstrap failed (log above)"; exit 1; }
    # Slim it like the official -slim images: no apt lists, no docs, no man pages.
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
        "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/*
}

import() { # import DIR TAG [--change ...]
    local dir=$1 tag=$2; shift 2
    log "docker import -> $tag"
    tar -C "$dir" -c . | docker import "$@" - "$tag" >/dev/null
}

need docker "install the Docker engine"
docker info >/dev/null 2>&1 || { log "no Docker engine reachable"; exit 1; }

# One maker at a time (parallel test processes); the second finds the tags made.
LOCK="${BASES_LOCK:-/tmp/tariscope-make-bases.lock}"
exec 9>"$LOCK"
flock 9

if have_image "$RUNTIME_TAG" && have_image "$BUILDER_TAG"; then
    log "$RUNTIME_TAG and $BUILDER_TAG exist; nothing to do"; exit 0
fi
[[ $(id -u) == 0 ]] || { log "debootstrap needs root"; exit 1; }
if ! command -v debootstrap >/dev/null 2>&1; then
    need apt-get "install debootstrap by hand (no apt-get here)"
    log "installing debootstrap (apt-get)"
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends debootstrap >/dev/null
fi
need debootstrap "apt-get install debootstrap"
WORK=$(mktemp -d /var/tmp/tariscope-bases.XXXXXX)

ENV_PATH='PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

if have_image "$RUNTIME_TAG"; then
    log "$RUNTIME_TAG exists; skipped"
else
    bootstrap "$WORK/runtime"
    import "$WORK/runtime" "$RUNTIME_TAG" --change "ENV $ENV_PATH" --change 'CMD ["bash"]'
fi

if have_image "$BUILDER_TAG"; then
    log "$BUILDER_TAG exists; skipped"
else
    need rustc "install a Rust toolchain (>= 1.89) on the host"
    sysroot=$(rustc --print sysroot)
    bootstrap "$WORK/builder" gcc,libc6-dev,ca-certificates
    # The host's toolchain (no toolchain can be downloaded here): rustc finds its sysroot
    # relative to its own binary, so bin/ + lib/ copied to /usr/local/cargo is a toolchain.
    log "copying the host toolchain from $sysroot ($(rustc --version))"
    mkdir -p "$WORK/builder/usr/local/cargo"
    cp -a "$sysroot/bin" "$sysroot/lib" "$WORK/builder/usr/local/cargo/"
    [[ -d "$sysroot/libexec" ]] && cp -a "$sysroot/libexec" "$WORK/builder/usr/local/cargo/"
    import "$WORK/builder" "$BUILDER_TAG" \
        --change 'ENV CARGO_HOME=/usr/local/cargo' \
        --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]'
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^(${RUNTIME_TAG}|${BUILDER_TAG}) " >&2 || true

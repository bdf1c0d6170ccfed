#!/usr/bin/env bash
# CI step before `cargo test`: install promtool for tests/metrics_lint.rs.
#   bash scripts/ci-prepare-promtool.sh
# Debian ships promtool only in the `prometheus` package (no smaller package has it); without
# recommends it adds about 100 MB. The test installs it itself as well when it runs as root;
# doing it here keeps that time out of the test and fails early when apt cannot.
set -euo pipefail
log() { echo "ci-prepare-promtool: $*" >&2; }

if command -v promtool >/dev/null 2>&1; then
    log "promtool present: $(promtool --version 2>&1 | head -1)"; exit 0
fi
log "installing the Debian package prometheus (for promtool)"
apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus >/dev/null
log "promtool installed: $(promtool --version 2>&1 | head -1)"

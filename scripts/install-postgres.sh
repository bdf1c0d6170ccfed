#!/usr/bin/env bash
# Installs Debian's `postgresql` package when /usr/lib/postgresql/*/bin/initdb is missing, for
# the tests that start a throwaway cluster (tests/pg_support). Run by those tests themselves
# (a fresh machine needs no step before `cargo test`) and by .ci/run; as root.
#   bash scripts/install-postgres.sh
# A lock keeps parallel test processes from installing at the same time; apt waits for
# another apt (promtool, debootstrap) instead of failing.
set -euo pipefail
log() { echo "install-postgres: $*" >&2; }
have() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

exec 9>/tmp/tariscope-install-postgres.lock
flock 9
if have; then
    log "present: $(ls -d /usr/lib/postgresql/*/bin | tail -1)"; exit 0
fi
command -v apt-get >/dev/null || { log "no apt-get here: install PostgreSQL's server by hand"; exit 1; }
log "installing the Debian package postgresql"
apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends postgresql >/dev/null
have || { log "the package installed but initdb is still missing"; exit 1; }
log "installed: $(ls -d /usr/lib/postgresql/*/bin | tail -1)"

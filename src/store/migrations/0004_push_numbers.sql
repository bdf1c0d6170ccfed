-- Migration 0004: numbers on every kind of server: what the daemon has seen of the server,
-- and push runs count the numbers they assigned.
-- Released migrations are never edited: change the schema with a new numbered file.

-- Daemon-owned: one row per trait, replaced by each run that observes it.
-- name `subscriber_dns`: value `shown` (subscriber records carry a list of numbers, even an
-- empty one) or `not-shown` (they carry no such field); decides where the push learns which
-- numbers a subscriber holds (docs/schema.md). source: the run that saw it (`pull run 12`).
CREATE TABLE server_traits (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    source      TEXT NOT NULL,
    observed_at TEXT NOT NULL
) WITHOUT ROWID;

-- push runs: `subscriber.dnadd` writes done by the run (0 for other jobs); `inserted` counts
-- the run's `subscriber.create` writes (adopted ones included), `updated` its
-- `subscriber.update` writes (follow-ups of creates included).
ALTER TABLE job_runs ADD COLUMN numbers INTEGER NOT NULL DEFAULT 0;

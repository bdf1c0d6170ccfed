-- Migration 0004: what the daemon has seen of the server it talks to.
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

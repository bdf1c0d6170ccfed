-- Migration 0002: the push side. Desired state (written by integrators), the merge base,
-- the outbox (every write recorded before it is sent), conflicts and rejected import rows.
-- Released migrations are never edited: change the schema with a new numbered file.

-- Written by local software (or `tariscope-sync import`). One row per subscriber that should
-- exist in Tariscope, keyed by the integrator's own key. A NULL column means "not managed".
-- Column names are the mirror's `subscribers` column names. `tariscope_id` is filled by the
-- daemon when it links or creates the subscriber (set it yourself to link explicitly).
CREATE TABLE desired_subscribers (
    key               TEXT PRIMARY KEY,
    tariscope_id      INTEGER,
    fullname          TEXT,
    departmentid      INTEGER,
    abonenttype       INTEGER,
    connectiondate    TEXT,
    contractid        TEXT,
    contractdate      TEXT,
    accountid         TEXT,
    personalcode      TEXT,
    code              TEXT,
    taxcode           TEXT,
    bankmfo           TEXT,
    bankname          TEXT,
    bankaccount       TEXT,
    rateplanid        INTEGER,
    street            TEXT,
    house             TEXT,
    flat              TEXT,
    email             TEXT,
    description       TEXT,
    authcode          TEXT,
    ispublic          INTEGER,
    zipcode           TEXT,
    information       TEXT,
    privilegeinfo     TEXT,
    area              TEXT,
    building          TEXT,
    floornumber       TEXT,
    gender            INTEGER,
    birthday          TEXT,
    deliverytype      INTEGER,
    privilegediscount TEXT
);
CREATE UNIQUE INDEX desired_subscribers_tariscope_id
    ON desired_subscribers (tariscope_id) WHERE tariscope_id IS NOT NULL;

-- The numbers each desired subscriber should hold. A number on a PBX is wanted once.
CREATE TABLE desired_dns (
    key         TEXT NOT NULL REFERENCES desired_subscribers (key) ON DELETE CASCADE ON UPDATE CASCADE,
    pbx_id      INTEGER NOT NULL,
    dn          TEXT NOT NULL,
    from_date   TEXT,
    description TEXT,
    PRIMARY KEY (pbx_id, dn)
);
CREATE INDEX desired_dns_key ON desired_dns (key);

-- Daemon-owned: per desired row and field, the local value last reconciled with Tariscope.
CREATE TABLE merge_base (
    key        TEXT NOT NULL,
    field      TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (key, field)
) WITHOUT ROWID;

-- Daemon-owned: every write, recorded before it is sent.
-- state: pending (recorded, not sent), sent (request may be on the wire), done, failed
-- (will be retried on a later run), ambiguous (outcome unknown, being looked up), terminal
-- (failed max_attempts times; needs a person).
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    key           TEXT NOT NULL,
    op            TEXT NOT NULL CHECK (op IN ('create', 'update', 'dnadd')),
    subscriber_id INTEGER,
    payload       TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'done', 'failed', 'ambiguous', 'terminal')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    result        TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX outbox_state ON outbox (state);
CREATE INDEX outbox_key ON outbox (key, id);

-- Daemon-owned: conflicts found by the planner. field = '' for row-level problems.
CREATE TABLE conflicts (
    key           TEXT NOT NULL,
    field         TEXT NOT NULL,
    subscriber_id INTEGER,
    base          TEXT,
    local         TEXT,
    remote        TEXT,
    resolution    TEXT NOT NULL CHECK (resolution IN ('keep-remote', 'push-local', 'manual', 'blocked')),
    reason        TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    PRIMARY KEY (key, field)
) WITHOUT ROWID;

-- Daemon-owned: import rows that were not taken, with the reason.
CREATE TABLE rejected (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    row    INTEGER NOT NULL,
    key    TEXT,
    reason TEXT NOT NULL,
    at     TEXT NOT NULL
);
CREATE INDEX rejected_source ON rejected (source, row);

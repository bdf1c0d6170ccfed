-- Migration 0001: the remote mirror, the change log and the job bookkeeping.
-- Released migrations are never edited: change the schema with a new numbered file.
-- Money and other decimals are TEXT in rust_decimal string form (e.g. '370.00'), never REAL.
-- Dates are TEXT 'yyyy-mm-dd' (Tariscope calendar dates); timestamps are TEXT RFC 3339 UTC.

CREATE TABLE job_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job         TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('incremental', 'backfill')),
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('running', 'ok', 'partial', 'failed')),
    fetched     INTEGER NOT NULL DEFAULT 0,
    inserted    INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL DEFAULT 0,
    removed     INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    errors      INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    window_from TEXT,
    window_to   TEXT
);
CREATE INDEX job_runs_job ON job_runs (job, outcome, mode, id);

CREATE TABLE checkpoints (
    job        TEXT NOT NULL,
    key        TEXT NOT NULL,
    cursor     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (job, key)
) WITHOUT ROWID;

CREATE TABLE item_errors (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  INTEGER NOT NULL REFERENCES job_runs (id),
    item    TEXT NOT NULL,
    error   TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX item_errors_run ON item_errors (run_id);

CREATE TABLE subscribers (
    id                INTEGER PRIMARY KEY,
    fullname          TEXT,
    street            TEXT,
    house             TEXT,
    flat              TEXT,
    email             TEXT,
    description       TEXT,
    authcode          TEXT,
    ispublic          INTEGER,
    abonenttype       INTEGER,
    code              TEXT,
    zipcode           TEXT,
    personalcode      TEXT,
    contractid        TEXT,
    information       TEXT,
    privilegeinfo     TEXT,
    area              TEXT,
    contractdate      TEXT,
    building          TEXT,
    floornumber       TEXT,
    accountid         TEXT,
    gender            INTEGER,
    birthday          TEXT,
    bankaccount       TEXT,
    bankmfo           TEXT,
    taxcode           TEXT,
    deliverytype      INTEGER,
    privilegediscount TEXT,
    departmentid      INTEGER,
    nodeid            INTEGER,
    rateplanid        INTEGER,
    connectiondate    TEXT,
    bankname          TEXT,
    content_hash      TEXT NOT NULL,
    first_seen_at     TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    removed_at        TEXT
);
CREATE INDEX subscribers_department ON subscribers (departmentid);
CREATE INDEX subscribers_node ON subscribers (nodeid);
CREATE INDEX subscribers_accountid ON subscribers (accountid);
CREATE INDEX subscribers_contractid ON subscribers (contractid);
CREATE INDEX subscribers_email ON subscribers (email);
CREATE INDEX subscribers_code ON subscribers (code);
CREATE INDEX subscribers_personalcode ON subscribers (personalcode);

CREATE TABLE dns (
    id            INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    dn_id         INTEGER,
    pbx_id        INTEGER,
    dn            TEXT NOT NULL,
    from_date     TEXT,
    description   TEXT
);
CREATE INDEX dns_subscriber ON dns (subscriber_id);
CREATE INDEX dns_dn ON dns (dn, pbx_id);

CREATE TABLE subscriber_changes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id         INTEGER NOT NULL REFERENCES job_runs (id),
    subscriber_id  INTEGER NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('inserted', 'updated', 'removed', 'restored')),
    changed_fields TEXT,
    at             TEXT NOT NULL
);
CREATE INDEX subscriber_changes_subscriber ON subscriber_changes (subscriber_id, id);
CREATE INDEX subscriber_changes_run ON subscriber_changes (run_id);

CREATE TABLE payments (
    subscriber_id INTEGER NOT NULL,
    payment_id    INTEGER NOT NULL,
    payment_day   TEXT,
    amount        TEXT,
    payment_type  INTEGER,
    bank          TEXT,
    first_seen_at TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, payment_id)
);
CREATE INDEX payments_day ON payments (payment_day);

CREATE TABLE charges (
    subscriber_id    INTEGER NOT NULL,
    charge_key       TEXT NOT NULL,
    charge_id        INTEGER,
    recdate          TEXT,
    fromdate         TEXT,
    todate           TEXT,
    servicename      TEXT,
    charge           TEXT,
    numberofservices TEXT,
    first_seen_at    TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, charge_key)
);
CREATE INDEX charges_recdate ON charges (recdate);
CREATE INDEX charges_subscriber_recdate ON charges (subscriber_id, recdate);

CREATE TABLE account_summaries (
    subscriber_id INTEGER NOT NULL,
    date          TEXT NOT NULL,
    start_debt    TEXT,
    end_debt      TEXT,
    charge        TEXT,
    payment       TEXT,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, date)
) WITHOUT ROWID;
CREATE INDEX account_summaries_date ON account_summaries (date);

CREATE TABLE tariff_plans (
    id         INTEGER PRIMARY KEY,
    name       TEXT,
    raw        TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE tariffs (
    id                 INTEGER PRIMARY KEY,
    name               TEXT,
    provider_id        INTEGER,
    parameters_id      INTEGER,
    plan_id            INTEGER,
    active_date        TEXT,
    currency_id        INTEGER,
    value              TEXT,
    roundto            INTEGER,
    freeseconds        INTEGER,
    subtract_seconds   INTEGER,
    roundcostto        INTEGER,
    rounddurationdown  INTEGER,
    roundcostdown      INTEGER,
    roundfirstminute   INTEGER,
    noaccount          INTEGER,
    accountdescription TEXT,
    accountdns         INTEGER,
    minimumduration    INTEGER,
    stages             INTEGER,
    minimumcost        TEXT,
    raw                TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX tariffs_plan ON tariffs (plan_id);

CREATE TABLE services (
    id         INTEGER PRIMARY KEY,
    name       TEXT,
    raw        TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE system_info (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    TEXT,
    database   TEXT,
    build      TEXT,
    serial     TEXT,
    edition    TEXT,
    updated_at TEXT NOT NULL
);

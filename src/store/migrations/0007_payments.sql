-- Migration 0007: payments into Tariscope, exactly once (issue 15).
-- Released migrations are never edited: change the schema with a new numbered file.

-- Written by local software (or `tariscope-sync import-payments`). One row per payment that
-- arrived elsewhere (a bank statement, a payment gateway) and must be recorded in Tariscope
-- once. reference: the payer system's unique id of the payment (a bank transaction id): posted
-- at most once, ever. The subscriber by exactly one of subscriberid, accountid (resolved
-- through the mirror's subscribers) or subscriber_key (a desired_subscribers key; the payment
-- waits until that row is linked). amount: decimal text, > 0, at most 2 decimal places.
-- paymentday: yyyy-mm-dd. paymenttype: 0 not specified (NULL), 1 cash, 2 by receipt, 3 by
-- account. Daemon-owned: paymentid (Tariscope's payment record id, once confirmed) and
-- posted_at. A row is checked before every push; a bad one is listed in `rejected`.
CREATE TABLE desired_payments (
    reference      TEXT PRIMARY KEY,
    subscriberid   INTEGER,
    accountid      TEXT,
    subscriber_key TEXT,
    amount         TEXT,
    paymentday     TEXT,
    paymenttype    INTEGER,
    bank           TEXT,
    paymentid      INTEGER,
    posted_at      TEXT
);

-- The outbox takes `payment` entries (key = the payment's reference) and keeps, per entry, the
-- snapshot taken before sending: the subscriber's payments of that day and amount (JSON
-- `{"ids": [...], "taken_at": ...}`), against which an unknown outcome is settled.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt, ids kept.
CREATE TABLE outbox_0007 (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    key           TEXT NOT NULL,
    op            TEXT NOT NULL CHECK (op IN ('create', 'update', 'dnadd', 'payment')),
    subscriber_id INTEGER,
    payload       TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'done', 'failed', 'ambiguous', 'terminal')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    result        TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    snapshot      TEXT
);
INSERT INTO outbox_0007 (id, key, op, subscriber_id, payload, state, attempts, last_error, result, created_at, updated_at)
    SELECT id, key, op, subscriber_id, payload, state, attempts, last_error, result, created_at, updated_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_0007 RENAME TO outbox;
CREATE INDEX outbox_state ON outbox (state);
CREATE INDEX outbox_key ON outbox (key, id);

-- The pulled payments mirror names the reference of each payment this daemon posted.
ALTER TABLE payments ADD COLUMN reference TEXT;
CREATE INDEX payments_reference ON payments (reference) WHERE reference IS NOT NULL;

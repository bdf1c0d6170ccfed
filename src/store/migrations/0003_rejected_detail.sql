-- Migration 0003: rejected rows say which column and value were refused and what the column
-- takes, and rows written with SQL are recognised until they change.
-- Released migrations are never edited: change the schema with a new numbered file.

-- source: the imported file, or `desired_subscribers` / `desired_dns` for rows written with
-- SQL (row = 0 for those). field / value / expected: the column, the value as written, and
-- what the column takes (NULL for a problem of the row as a whole). fingerprint: identifies
-- a table row as written; the rejection stands, with its first `at`, until the row changes.
ALTER TABLE rejected ADD COLUMN field TEXT;
ALTER TABLE rejected ADD COLUMN value TEXT;
ALTER TABLE rejected ADD COLUMN expected TEXT;
ALTER TABLE rejected ADD COLUMN fingerprint TEXT;

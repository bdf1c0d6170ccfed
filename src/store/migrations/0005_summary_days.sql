-- Migration 0005: account summaries of days without activity are derived, not fetched (issue 14).
-- Released migrations are never edited: change the schema with a new numbered file.

-- Whether the row's values were answered by accounts.summary ('fetched') or derived from the
-- fetched days around it ('derived': a day with no charge and no payment between two fetched
-- days whose balances connect). Rows written before this migration were all fetched.
ALTER TABLE account_summaries ADD COLUMN origin TEXT NOT NULL DEFAULT 'fetched'
    CHECK (origin IN ('fetched', 'derived'));

-- The summaries job's day counts (NULL for every other job).
ALTER TABLE job_runs ADD COLUMN days_fetched INTEGER;
ALTER TABLE job_runs ADD COLUMN days_derived INTEGER;
ALTER TABLE job_runs ADD COLUMN days_bisected INTEGER;
ALTER TABLE job_runs ADD COLUMN stretches_bisected INTEGER;
ALTER TABLE job_runs ADD COLUMN every_day_subscribers INTEGER;

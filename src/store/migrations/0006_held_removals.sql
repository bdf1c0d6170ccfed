-- Removals a pull run held back because they were over jobs.<job>.max_removals (issue 25).
-- `subject` is the removed row: a subscriber id for the subscribers job, `<table>:<id>` for
-- the reference job. `scope` is the list it is missing from ("node 1", "tariff_plans").
-- Applied by `tariscope-sync confirm-removals RUN`, which deletes the run's rows here.
CREATE TABLE held_removals (
    run_id  INTEGER NOT NULL REFERENCES job_runs (id),
    job     TEXT NOT NULL,
    subject TEXT NOT NULL,
    scope   TEXT NOT NULL,
    PRIMARY KEY (run_id, subject)
);

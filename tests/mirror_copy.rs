//! `tariscope-sync mirror copy --to postgres://...` against a real PostgreSQL server (a
//! throwaway cluster from tests/pg_support): the demo's mirror arrives whole, in native
//! types, with its ids' sequences past the copied ids; a non-empty target, a bad URL, a job
//! running elsewhere, an unreachable server and a newer schema are refused with what to do.
//! Must not: mock the server.

mod cli_support;
mod deploy_support;
mod pg_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cli_support::{BIN, text};

/// The demo's mirror (60 subscribers, pulls and a push) in `dir`; its config file.
fn demo_mirror(dir: &Path) -> PathBuf {
    let out = Command::new(BIN)
        .args(["demo", "--subscribers", "60", "--dir"])
        .arg(dir.join("demo"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    dir.join("demo/tariscope-sync.toml")
}

fn copy(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["mirror", "copy"])
        .args(args)
        .output()
        .unwrap()
}

fn sqlite(config: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(config.parent().unwrap().join("mirror.db")).unwrap()
}

fn sqlite_count(db: &rusqlite::Connection, table: &str) -> i64 {
    db.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
        r.get(0)
    })
    .unwrap()
}

fn pg_count(pg: &mut postgres::Client, table: &str) -> i64 {
    pg.query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
        .unwrap()
        .get(0)
}

#[test]
fn the_demo_mirror_arrives_whole_in_native_types() {
    let Some(cluster) = pg_support::cluster() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = demo_mirror(dir.path());
    // What an integrator's plain SQL may leave: text with COPY's special characters.
    let tricky = "tab\there, newline\nthere, back\\slash, \\N, quote ' and \"";
    sqlite(&config)
        .execute(
            "INSERT INTO desired_subscribers (key, fullname, description, ispublic, contractdate)
             VALUES ('tricky', 'Tricky Row', ?1, 1, '2025-06-01')",
            [tricky],
        )
        .unwrap();

    let url = cluster.database();
    let with_password = url.replace("postgres@", "postgres:hunter2@");
    let out = copy(&config, &["--to", &with_password]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("every table's row count matches the SQLite mirror"),
        "{t}"
    );
    assert!(!t.contains("hunter2"), "the password was printed: {t}");

    let db = sqlite(&config);
    let mut pg = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.len() >= 20, "{tables:?}");
    for table in &tables {
        assert_eq!(
            pg_count(&mut pg, table),
            sqlite_count(&db, table),
            "rows of {table}"
        );
    }
    for table in [
        "subscribers",
        "dns",
        "payments",
        "charges",
        "account_summaries",
        "outbox",
    ] {
        assert!(sqlite_count(&db, table) > 0, "the demo left {table} empty");
    }

    // Money as numeric, days as date, exactly the SQLite text.
    let mut theirs: Vec<(i64, i64, String, String)> = pg
        .query(
            "SELECT subscriber_id, payment_id, amount::text, payment_day::text FROM payments",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let mut ours: Vec<(i64, i64, String, String)> = db
        .prepare("SELECT subscriber_id, payment_id, amount, payment_day FROM payments")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    theirs.sort();
    ours.sort();
    assert_eq!(theirs, ours);
    let types: Vec<(String, String)> = pg
        .query(
            "SELECT table_name::text || '.' || column_name::text, data_type::text
             FROM information_schema.columns WHERE table_schema = current_schema()
             AND (table_name, column_name) IN (('payments', 'amount'), ('payments', 'payment_day'),
                 ('job_runs', 'started_at'), ('subscribers', 'ispublic'),
                 ('subscriber_changes', 'changed_fields'), ('account_summaries', 'end_debt'))
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let types: Vec<(&str, &str)> = types
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("account_summaries.end_debt", "numeric"),
            ("job_runs.started_at", "timestamp with time zone"),
            ("payments.amount", "numeric"),
            ("payments.payment_day", "date"),
            ("subscriber_changes.changed_fields", "jsonb"),
            ("subscribers.ispublic", "boolean"),
        ]
    );
    // Sums of money agree to the cent and beyond.
    let pg_sum: String = pg
        .query_one(
            "SELECT coalesce(sum(end_debt), 0)::text FROM account_summaries",
            &[],
        )
        .unwrap()
        .get(0);
    let sqlite_texts: Vec<Option<String>> = db
        .prepare("SELECT end_debt FROM account_summaries")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let sqlite_sum: rust_decimal::Decimal = sqlite_texts
        .iter()
        .flatten()
        .map(|t| t.parse::<rust_decimal::Decimal>().unwrap())
        .sum();
    assert_eq!(pg_sum.parse::<rust_decimal::Decimal>().unwrap(), sqlite_sum);
    // Flags, timestamps and the change log's JSON.
    let public: i64 = db
        .query_row(
            "SELECT count(*) FROM subscribers WHERE ispublic = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let pg_public: i64 = pg
        .query_one("SELECT count(*) FROM subscribers WHERE ispublic", &[])
        .unwrap()
        .get(0);
    assert_eq!(pg_public, public);
    let first_run: String = db
        .query_row(
            "SELECT started_at FROM job_runs ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let pg_first: String = pg
        .query_one(
            "SELECT to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM job_runs ORDER BY id LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(pg_first, first_run);
    let objects: i64 = pg
        .query_one(
            "SELECT count(*) FROM subscriber_changes WHERE jsonb_typeof(changed_fields) IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    let with_fields: i64 = db
        .query_row(
            "SELECT count(*) FROM subscriber_changes WHERE changed_fields IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(objects, with_fields);
    // Text byte for byte.
    let row = pg
        .query_one(
            "SELECT description, ispublic, contractdate::text FROM desired_subscribers WHERE key = 'tricky'",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), tricky);
    assert!(row.get::<_, bool>(1));
    assert_eq!(row.get::<_, String>(2), "2025-06-01");
    // A new row gets an id past every copied one (and past SQLite's AUTOINCREMENT counter).
    let sqlite_next: i64 = db
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'job_runs'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let new_id: i64 = pg
        .query_one(
            "INSERT INTO job_runs (job, mode, started_at, outcome) VALUES ('push', 'incremental', now(), 'running') RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(new_id > sqlite_next, "{new_id} <= {sqlite_next}");
    let version: i32 = pg
        .query_one("SELECT max(version) FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(version as u32, tariscope_sync::store::SCHEMA_VERSION);
}

#[test]
fn copies_that_would_mix_mirrors_or_cannot_work_are_refused_with_what_to_do() {
    let Some(cluster) = pg_support::cluster() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = demo_mirror(dir.path());
    let url = cluster.database();
    let first = copy(&config, &["--to", &url]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let mut pg = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let subscribers = pg_count(&mut pg, "subscribers");

    // A second copy into the same database: refused, nothing touched.
    pg.batch_execute(
        "DELETE FROM dns; DELETE FROM subscribers WHERE id IN (SELECT id FROM subscribers LIMIT 3)",
    )
    .unwrap();
    let again = copy(&config, &["--to", &url]);
    let t = text(&again);
    assert_eq!(again.status.code(), Some(3), "{t}");
    assert!(t.contains("is not empty") && t.contains("--force"), "{t}");
    assert_eq!(pg_count(&mut pg, "subscribers"), subscribers - 3);

    // --force replaces it with the mirror as it is.
    let forced = copy(&config, &["--to", &url, "--force"]);
    let t = text(&forced);
    assert_eq!(forced.status.code(), Some(0), "{t}");
    assert!(t.contains("--force: replaced"), "{t}");
    assert_eq!(pg_count(&mut pg, "subscribers"), subscribers);

    // A job running elsewhere: exit 75, nothing copied.
    let mirror = config.parent().unwrap().join("mirror.db");
    let me = tariscope_sync::lock::Holder::this_process("daemon", chrono::Utc::now());
    let held = tariscope_sync::lock::try_acquire(&mirror, "push", &me).unwrap();
    let busy = copy(&config, &["--to", &cluster.database()]);
    let t = text(&busy);
    assert_eq!(busy.status.code(), Some(75), "{t}");
    assert!(
        t.contains("push job is running") && t.contains("stop the daemon"),
        "{t}"
    );
    drop(held);

    // A bad URL is a configuration error.
    let bad = copy(&config, &["--to", "postgres://127.0.0.1/mirror"]);
    let t = text(&bad);
    assert_eq!(bad.status.code(), Some(3), "{t}");
    assert!(t.contains("names no user"), "{t}");

    // Nothing listening.
    let closed = format!(
        "postgres://postgres@127.0.0.1:{}/mirror",
        cli_support::free_port()
    );
    let down = copy(&config, &["--to", &closed]);
    let t = text(&down);
    assert_eq!(down.status.code(), Some(1), "{t}");
    assert!(
        t.contains("cannot connect to PostgreSQL") && t.contains("pg_hba.conf"),
        "{t}"
    );

    // A value SQLite's loose typing let in but the native column refuses: named, nothing kept.
    sqlite(&config)
        .execute(
            "INSERT INTO desired_subscribers (key, fullname, departmentid) VALUES ('bad', 'Bad Row', 'abc')",
            [],
        )
        .unwrap();
    let refused = copy(&config, &["--to", &url, "--force"]);
    let t = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{t}");
    assert!(
        t.contains("copying desired_subscribers")
            && t.contains("departmentid")
            && t.contains("\"abc\"")
            && t.contains("fix or delete that row"),
        "{t}"
    );
    assert_eq!(pg_count(&mut pg, "subscribers"), subscribers);
    sqlite(&config)
        .execute("DELETE FROM desired_subscribers WHERE key = 'bad'", [])
        .unwrap();

    // A database a newer release migrated.
    pg.batch_execute("INSERT INTO schema_version (version) VALUES (99)")
        .unwrap();
    let newer = copy(&config, &["--to", &url, "--force"]);
    let t = text(&newer);
    assert_eq!(newer.status.code(), Some(1), "{t}");
    assert!(
        t.contains("schema version 99") && t.contains("upgrade tariscope-sync"),
        "{t}"
    );
    assert_eq!(pg_count(&mut pg, "subscribers"), subscribers);
}

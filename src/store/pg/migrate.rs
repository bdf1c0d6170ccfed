//! The PostgreSQL mirror's schema version: creating the schema, refusing a newer one.
//!
//! Owns: the `schema_version` table (one row: the version of the mirror's schema, the same
//! numbering as the SQLite mirror's `PRAGMA user_version`), the list of PostgreSQL
//! migrations, and the table list in load order. Must not: edit a released migration (append
//! a new one, for both backends, with the same number).

use postgres::GenericClient;

use super::{PgError, Target};
use crate::store::SCHEMA_VERSION;

/// `(version reached, name, SQL)`. The PostgreSQL schema starts at version 8 (what the SQLite
/// migrations 1-8 built, in one file); a later migration is appended for both backends.
const MIGRATIONS: &[(u32, &str, &str)] = &[(8, "0008_postgres", include_str!("schema.sql"))];

/// The mirror's tables, parents before the tables whose foreign keys name them.
pub const SCHEMA_TABLES: &[&str] = &[
    "job_runs",
    "checkpoints",
    "item_errors",
    "subscribers",
    "dns",
    "subscriber_changes",
    "payments",
    "charges",
    "account_summaries",
    "tariff_plans",
    "tariffs",
    "services",
    "system_info",
    "desired_subscribers",
    "desired_dns",
    "merge_base",
    "conflicts",
    "rejected",
    "server_traits",
    "held_removals",
    "desired_payments",
    "outbox",
];

/// Any fixed key: every tariscope-sync migrating the same database takes this
/// transaction-scoped advisory lock first, so two processes starting at once apply each
/// migration once.
const MIGRATION_LOCK: i64 = 0x7461_7269_7363_6f70; // "tariscop"

/// The schema version `client`'s database holds (0: none yet).
pub fn schema_version(client: &mut impl GenericClient, target: &Target) -> Result<u32, PgError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .map_err(target.sql("looking for the schema version"))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_opt("SELECT max(version) FROM schema_version", &[])
        .map_err(target.sql("reading the schema version"))?;
    Ok(row
        .and_then(|r| r.get::<_, Option<i32>>(0))
        .map_or(0, |v| v as u32))
}

/// Brings the database to this build's schema version, each migration in its own
/// transaction; refuses a database of a newer version. Returns the version.
pub fn migrate(client: &mut postgres::Client, target: &Target) -> Result<u32, PgError> {
    for (version, name, sql) in MIGRATIONS {
        let mut tx = client
            .transaction()
            .map_err(target.sql("starting a migration"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(target.sql("taking the migration lock"))?;
        let found = schema_version(&mut tx, target)?;
        if found > SCHEMA_VERSION {
            return Err(PgError::TooNew {
                target: target.shown().to_owned(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found >= *version {
            continue;
        }
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .map_err(target.sql("creating the schema_version table"))?;
        tx.batch_execute(sql)
            .map_err(target.sql(format!("applying migration {version} ({name})")))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(*version as i32)],
        )
        .map_err(target.sql("recording the schema version"))?;
        tx.commit()
            .map_err(target.sql(format!("committing migration {version}")))?;
        tracing::info!(
            version,
            name,
            target = target.shown(),
            "applied PostgreSQL mirror migration"
        );
    }
    Ok(SCHEMA_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_postgres_schema_reaches_this_builds_version() {
        assert_eq!(MIGRATIONS.last().unwrap().0, SCHEMA_VERSION);
    }

    /// Every table of the SQLite mirror is in the PostgreSQL schema and the load order, and
    /// nothing else is: a new SQLite table without its PostgreSQL twin fails here.
    #[test]
    fn both_backends_have_the_same_tables() {
        let mut store = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrate_for_tests(&mut store);
        let mut sqlite: Vec<String> = store
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        sqlite.sort();
        let mut listed: Vec<String> = SCHEMA_TABLES.iter().map(|t| t.to_string()).collect();
        listed.sort();
        assert_eq!(sqlite, listed);
        let sql = include_str!("schema.sql");
        for table in SCHEMA_TABLES {
            assert!(
                sql.contains(&format!("CREATE TABLE {table} (")),
                "schema.sql has no table {table}"
            );
        }
    }
}

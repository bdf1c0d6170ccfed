//! `tariscope-sync doctor`: can this configuration work? Each problem with what to do.

use super::out::Out;
use crate::api::TariscopeClient;
use crate::config::Config;
use crate::daemon::Exit;
use crate::model::DnListing;
use crate::outln;
use crate::store::{SCHEMA_VERSION, Store};
use crate::sync::Job;

/// The API methods each job calls.
pub fn methods_needed(job: Job, config: &Config) -> Vec<&'static str> {
    let mut lists = Vec::new();
    if !config.scope.nodes.is_empty() {
        lists.push("subscriber.list.node");
    }
    if !config.scope.departments.is_empty() {
        lists.push("subscriber.list.department");
    }
    match job {
        Job::Reference => vec![
            "tariffs.plans",
            "tariffs.details",
            "services.list",
            "tariscope.summary",
        ],
        Job::Subscribers => {
            let mut m = lists;
            if config.api.profile.lists_are_partial {
                m.push("subscriber.get");
            }
            m
        }
        Job::Payments => vec!["accounts.payments"],
        Job::Charges => vec!["accounts.charges"],
        Job::Summaries => vec!["accounts.summary"],
        Job::Push => {
            let mut m = vec![
                "subscriber.create",
                "subscriber.update",
                "subscriber.dnadd",
                "subscriber.get",
                "subscriber.list.department",
            ];
            if config.payments.post {
                // Posting, and the snapshot, look-up and read-back around it.
                m.extend(["accounts.payment", "accounts.payments"]);
            }
            m
        }
    }
}

/// The checks' lines and the count of problems.
struct Report<'a> {
    out: &'a mut Out,
    problems: usize,
}

impl Report<'_> {
    fn check(&mut self, ok: bool, what: String, fix: &str) {
        if ok {
            outln!(self.out, "  ok    {what}");
        } else {
            self.problems += 1;
            outln!(self.out, "  FAIL  {what}\n        -> {fix}");
        }
    }
}

/// What the runs saw of subscriber records: do they show the subscriber's numbers?
async fn dn_listing(r: &mut Report<'_>, store: &Store) {
    let line = match store.dn_listing().await {
        Ok(Some(seen)) => format!(
            "{} (seen by {} at {})",
            match seen.value {
                DnListing::Shown => {
                    "subscriber records show their numbers: the push takes Tariscope's list as the truth"
                }
                DnListing::NotShown => {
                    "subscriber records show no numbers: the push counts a number as held once its own dnadd was confirmed"
                }
            },
            seen.source,
            seen.at
        ),
        Ok(None) => "no run has read a subscriber record yet: the push counts a number as held once its own dnadd was confirmed".into(),
        Err(e) => format!("cannot read what the server's records show: {e}"),
    };
    outln!(r.out, "  info  {line}");
}

pub async fn run(config: &Config, out: &mut Out) -> Exit {
    let mut r = Report { out, problems: 0 };
    outln!(r.out, "mirror {}", config.mirror.shown());
    match Store::open_configured(&config.mirror.path, config.mirror.postgres.as_ref()) {
        Ok(store) => {
            let version = store.schema_version().await.unwrap_or(0);
            r.check(
                version == SCHEMA_VERSION,
                format!("schema version {version} (this build: {SCHEMA_VERSION})"),
                "open the mirror with this build once to migrate it",
            );
            let w = store.probe_write().await;
            r.check(
                w.is_ok(),
                format!(
                    "writable{}",
                    w.err().map(|e| format!(": {e}")).unwrap_or_default()
                ),
                if config.mirror.postgres.is_some() {
                    "grant the mirror's PostgreSQL user INSERT, UPDATE and DELETE on the mirror's tables"
                } else {
                    "check the file's owner and mode and free disk space"
                },
            );
            if let Some(wal) = store.wal() {
                let limit = config.mirror.wal_warn_mib << 20;
                r.check(
                    limit == 0 || wal.bytes <= limit,
                    format!("WAL {:.1} MiB", wal.bytes as f64 / 1048576.0),
                    "a reader holds a long read transaction (report, BI tool, open BEGIN): end it; the WAL shrinks by itself afterwards (docs/schema.md)",
                );
            }
            dn_listing(&mut r, &store).await;
        }
        Err(e) => r.check(
            false,
            format!("cannot open: {e}"),
            if config.mirror.postgres.is_some() {
                "check mirror.url, that the PostgreSQL server runs, the user's password and pg_hba.conf"
            } else {
                "check mirror.path and the folder's permissions"
            },
        ),
    }
    outln!(
        r.out,
        "api {} as {:?}",
        config.api.base_url,
        config.api.username
    );
    let client = match TariscopeClient::new(config.client_config()) {
        Ok(c) => c,
        Err(e) => {
            r.check(false, format!("client: {e}"), "fix the [api] settings");
            return Exit::Runtime;
        }
    };
    match client.claims().await {
        Ok(claims) => {
            r.check(true, "reached the server and logged in".into(), "");
            for job in config.select_jobs(&[]) {
                let missing: Vec<_> = methods_needed(job, config)
                    .into_iter()
                    .filter(|m| !claims.iter().any(|c| c == m))
                    .collect();
                r.check(
                    missing.is_empty(),
                    format!(
                        "rights for the {job} job{}",
                        if missing.is_empty() {
                            String::new()
                        } else {
                            format!(": missing {}", missing.join(", "))
                        }
                    ),
                    "grant these methods to the API user (Integration > Tariscope API > API Users > Method Rights), or disable the job",
                );
            }
            if claims.iter().any(|c| c == "sql") {
                outln!(
                    r.out,
                    "  warn  the API user may call `sql` (full database access); tariscope-sync never needs it: revoke that right"
                );
            }
        }
        Err(e) => r.check(
            false,
            format!("login or claims: {e}"),
            "check api.base_url, api.username, the password and that this host's IP may reach the server",
        ),
    }
    match client.system_info().await {
        Ok(info) => outln!(
            r.out,
            "  info  Tariscope version {}, database {}, edition {}",
            info.version.as_deref().unwrap_or("?"),
            info.database.as_deref().unwrap_or("?"),
            info.edition.as_deref().unwrap_or("?")
        ),
        Err(e) => outln!(r.out, "  warn  cannot read the server version: {e}"),
    }
    let problems = r.problems;
    if problems == 0 {
        outln!(r.out, "\nall checks passed");
        Exit::Ok
    } else {
        outln!(r.out, "\n{problems} problem(s)");
        Exit::Runtime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_push_needs_the_payment_methods_while_it_posts_payments() {
        let config = |post: bool| {
            let text = format!(
                "[api]\nusername = \"u\"\npassword = \"p\"\n[scope]\nnodes = [1]\n[payments]\npost = {post}\n"
            );
            crate::config::from_toml_str(&text, &Default::default()).unwrap()
        };
        let posting = methods_needed(Job::Push, &config(true));
        assert!(posting.contains(&"accounts.payment") && posting.contains(&"accounts.payments"));
        let not = methods_needed(Job::Push, &config(false));
        assert!(!not.iter().any(|m| m.starts_with("accounts.")), "{not:?}");
    }
}

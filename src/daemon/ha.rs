//! Leader and standby on a PostgreSQL mirror (issue 13).
//!
//! Owns: the daemon's loop over its roles. It stands by (runs no job; `/healthz` ok,
//! `/readyz` says `role=standby`; sd-notify STATUS names the leader) and tries to lead every
//! `retry_every`; once its writer's session holds the leader lock it runs the jobs as the
//! SQLite daemon does, until shutdown or until that session loses the lock (killed,
//! paused past the takeover time, the server restarted): then its store has refused every
//! write since, and it stops its jobs, says so, and stands by again. A mirror no retry can
//! make usable (a newer release's schema, a server too old to fence) ends it with the
//! reason, as a SQLite mirror that cannot be opened does. Also the election's
//! name for this Tariscope and this process. Must not: write to the mirror outside a
//! leader's store (fencing lives in the store's writer).

use std::future::Future;
use std::sync::Arc;

use super::{Background, Exit, StartError, lead, serve_health, with_store};
use crate::clock::Clock;
use crate::config::Config;
use crate::notify::Notifier;
use crate::serve::{Health, Role};
use crate::store::pg::PgError;
use crate::store::pg::leader::Election;
use crate::store::{Leadership, Store, StoreError};

/// The election among the daemons syncing this configuration's Tariscope.
pub(super) fn election(config: &Config) -> Election {
    Election::new(&config.api.base_url, config.mirror.takeover)
}

/// This process as the other daemons see it (`pg_stat_activity.application_name`).
pub(super) fn holder() -> String {
    format!("{} pid {}", crate::lock::host_name(), std::process::id())
}

/// The daemon on a PostgreSQL mirror: stands by, leads when it can, steps down when its
/// leader lock is lost, until `shutdown`.
pub async fn run_ha(
    config: &Config,
    clock: Clock,
    listener: Option<tokio::net::TcpListener>,
    notifier: Notifier,
    shutdown: impl Future<Output = ()>,
) -> Exit {
    let Some(target) = config.mirror.postgres.clone() else {
        return Exit::Config;
    };
    let election = election(config);
    let holder = holder();
    let health = Health::new(clock, 120);
    health.set_role(Role::Standby);
    let server = serve_health(listener, &health);
    notifier.ready();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut said = None;
    loop {
        health.set_role(Role::Standby);
        metrics::gauge!("tariscope_sync_leader").set(0.0);
        // Stand by until this process leads.
        let store = loop {
            let (t, e, h) = (target.clone(), election.clone(), holder.clone());
            let found = tokio::task::spawn_blocking(move || Store::lead_postgres(&t, &e, &h))
                .await
                .unwrap_or_else(|join| Err(StoreError::Bug(join.to_string())));
            match found {
                Ok(Leadership::Leader(store)) => break store,
                Ok(Leadership::Standby { leader }) => {
                    health.set_mirror_open(true);
                    let leader = leader.unwrap_or_else(|| "a process not named".into());
                    if said.as_ref() != Some(&leader) {
                        tracing::info!(leader = %leader, "standing by: another daemon leads and runs the jobs; this one takes over when it is gone");
                        notifier.status(&format!("standby: {leader} leads"));
                        said = Some(leader);
                    }
                }
                Err(e) if retry_cannot_help(&e) => {
                    tracing::error!("{e}");
                    notifier.status("stopped: the PostgreSQL mirror cannot be used; see the log");
                    stop(server, &notifier).await;
                    return Exit::Runtime;
                }
                Err(e) => {
                    health.set_mirror_open(false);
                    tracing::warn!(error = %e, "standing by: the PostgreSQL mirror cannot be used now; trying again");
                    notifier
                        .status("standby: the PostgreSQL mirror cannot be used now; see the log");
                    said = None;
                }
            }
            // Alive while standing by: `/healthz` and systemd's watchdog.
            health.tick();
            notifier.watchdog();
            tokio::select! {
                _ = &mut shutdown => return stop(server, &notifier).await,
                _ = tokio::time::sleep(election.retry_every()) => {}
            }
        };
        said = None;
        metrics::counter!("tariscope_sync_takeovers_total").increment(1);
        metrics::gauge!("tariscope_sync_leader").set(1.0);
        health.set_role(Role::Leader);
        health.set_mirror_open(true);
        tracing::info!(target = %target.shown(), "leading: this daemon runs the jobs");
        let deposed = store.deposed().unwrap_or_default();
        let jobs = match with_store(config, clock, store) {
            Ok(jobs) => Arc::new(jobs),
            Err(e) => {
                tracing::error!("{e}");
                stop(server, &notifier).await;
                return match e {
                    StartError::Client(_) => Exit::Config,
                    _ => Exit::Runtime,
                };
            }
        };
        let mut shut = false;
        let until = async {
            tokio::select! {
                _ = &mut shutdown => shut = true,
                _ = deposed.cancelled() => {}
            }
        };
        lead(jobs, &health, &notifier, until).await;
        if shut {
            return stop(server, &notifier).await;
        }
        if deposed.is_cancelled() {
            tracing::warn!(
                "stepped down: this daemon lost the leader lock, wrote nothing more since, and stands by"
            );
        } else {
            // The mirror failed under the leader before its lock was found lost: stand
            // by after a pause rather than spin.
            tokio::select! {
                _ = &mut shutdown => return stop(server, &notifier).await,
                _ = tokio::time::sleep(election.retry_every()) => {}
            }
        }
    }
}

/// Whether standing by and trying again cannot help: the database holds a newer release's
/// schema, the server is too old to fence a standby, or the configuration cannot be used.
/// (A server that is down, restarting or refusing the login is tried again: it may be
/// starting, or being fixed.)
fn retry_cannot_help(e: &StoreError) -> bool {
    matches!(e, StoreError::Postgres(pg) if matches!(
        **pg,
        PgError::TooNew { .. }
            | PgError::TooOldForStandby { .. }
            | PgError::Url { .. }
            | PgError::PasswordFile { .. }
    ))
}

async fn stop(server: Background, notifier: &Notifier) -> Exit {
    notifier.stopping();
    server.stop().await;
    tracing::info!("daemon stopped");
    Exit::Ok
}

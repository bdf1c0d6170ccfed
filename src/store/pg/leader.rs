//! Who leads: of the daemons sharing one PostgreSQL mirror and one Tariscope server, one
//! writes, the others stand by (issue 13).
//!
//! Owns: the election and the fencing that comes with it. The leader holds a session-level
//! advisory lock, keyed by the Tariscope base URL, on its *writer session*: the one
//! connection every mirror write of the leader goes through. Fencing follows from that:
//! PostgreSQL releases the lock only when that session ends, and once it has ended nothing
//! more can be committed through it. So a deposed leader cannot commit an outbox entry as
//! `sent`, and the daemon sends nothing it has not first committed as `sent`.
//!
//! A killed leader's session ends at once (its socket closes). A paused one (SIGSTOP, a
//! frozen VM) keeps its TCP connection open, and a vanished host leaves it half-open, so the
//! session is told to end itself when silent: `idle_session_timeout` and
//! `idle_in_transaction_session_timeout` at two thirds of the takeover time, TCP keepalives
//! and `tcp_user_timeout` in the same bounds. A healthy leader heartbeats every quarter of it
//! (`Election::heartbeat_every`) and standbys try every sixth, so a standby leads within
//! the takeover time of the leader going silent. `idle_session_timeout` needs PostgreSQL 14.
//!
//! Must not: hold the lock on a session other than the writer's (the lock would not fence
//! the writes), or take it twice on one session (advisory locks stack).

use std::time::Duration;

use postgres::GenericClient;

use super::{PgError, Target};

/// The oldest server with `idle_session_timeout`, which fences a paused leader.
const MIN_SERVER_VERSION: i32 = 140_000;

/// The election for one Tariscope server.
#[derive(Debug, Clone)]
pub struct Election {
    scope: String,
    key: i64,
    takeover: Duration,
}

/// What `Election::try_lead` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// This session holds the lock: write.
    Leader,
    /// Another session holds it: stand by. Its `application_name`, when it is still
    /// connected (`tariscope-sync <holder>`).
    Standby { leader: Option<String> },
}

impl Election {
    /// The election among daemons syncing `scope` (the Tariscope base URL), in which a
    /// silent leader is replaced within `takeover`.
    pub fn new(scope: &str, takeover: Duration) -> Election {
        Election {
            scope: scope.trim_end_matches('/').to_owned(),
            key: lock_key(scope),
            takeover,
        }
    }

    /// The advisory lock's key.
    pub fn key(&self) -> i64 {
        self.key
    }

    /// How often a leader must confirm its lock (any statement keeps the session alive;
    /// `confirm` also checks the lock).
    pub fn heartbeat_every(&self) -> Duration {
        self.takeover / 4
    }

    /// How often a standby tries to take over.
    pub fn retry_every(&self) -> Duration {
        self.takeover / 6
    }

    /// Prepares a session to take part: names it `tariscope-sync <holder>` (what standbys
    /// and `pg_stat_activity` show) and makes the server end it when it stays silent for two
    /// thirds of the takeover time. Refuses a server older than PostgreSQL 14.
    pub fn prepare(
        &self,
        client: &mut impl GenericClient,
        holder: &str,
        target: &Target,
    ) -> Result<(), PgError> {
        let version: i32 = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .map_err(target.sql("reading the server version"))?
            .get(0);
        if version < MIN_SERVER_VERSION {
            return Err(PgError::TooOldForStandby {
                target: target.shown().to_owned(),
                version,
            });
        }
        let silent_ms = (self.takeover.as_millis() * 2 / 3).max(1) as i64;
        let keepalive_s = (silent_ms / 3000).max(1);
        client
            .query(
                "SELECT set_config('application_name', $1, false),
                        set_config('idle_session_timeout', $2, false),
                        set_config('idle_in_transaction_session_timeout', $2, false),
                        set_config('tcp_user_timeout', $2, false),
                        set_config('tcp_keepalives_idle', $3, false),
                        set_config('tcp_keepalives_interval', $3, false),
                        set_config('tcp_keepalives_count', '2', false)",
                &[
                    &format!("tariscope-sync {holder}"),
                    &silent_ms.to_string(),
                    &keepalive_s.to_string(),
                ],
            )
            .map_err(target.sql("setting up the session for the leader election"))?;
        Ok(())
    }

    /// Takes the lock if no session holds it. Call on a prepared session that does not hold
    /// it yet (`confirm` tells a leader it still does).
    pub fn try_lead(
        &self,
        client: &mut impl GenericClient,
        target: &Target,
    ) -> Result<Role, PgError> {
        let won: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&self.key])
            .map_err(target.sql("trying to take the leader lock"))?
            .get(0);
        if won {
            tracing::info!(scope = %self.scope, target = target.shown(), "leading: this daemon runs the jobs");
            return Ok(Role::Leader);
        }
        let leader: Option<String> = client
            .query_opt(
                &format!(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE {} AND l.granted",
                    LOCK_ROW
                ),
                &[&self.key],
            )
            .map_err(target.sql("looking up the leader"))?
            .map(|r| r.get(0));
        Ok(Role::Standby { leader })
    }

    /// The heartbeat and the fence: `Ok` only when this session is alive and still holds the
    /// lock. Any failure means the session (and with it the lock) may be gone: the caller
    /// must stop writing and stand by. Inside a transaction it fences that transaction's
    /// commit too (the session holds the lock until it ends).
    pub fn confirm(&self, client: &mut impl GenericClient, target: &Target) -> Result<(), PgError> {
        let deposed = |detail: String| PgError::Deposed {
            target: target.shown().to_owned(),
            scope: self.scope.clone(),
            detail,
        };
        let held: bool = client
            .query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE {} AND l.granted AND l.pid = pg_backend_pid())",
                    LOCK_ROW
                ),
                &[&self.key],
            )
            .map_err(|e| deposed(super::detail(&e)))?
            .get(0);
        if held {
            Ok(())
        } else {
            Err(deposed(
                "the session no longer holds the leader lock".into(),
            ))
        }
    }
}

/// The `pg_locks` row of a session-level advisory lock on the bigint `$1`: its high half in
/// `classid`, its low half in `objid`, `objsubid` 1.
const LOCK_ROW: &str = "l.locktype = 'advisory' AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND ((l.classid::bigint << 32) | l.objid::bigint) = $1";

/// A stable key for `scope` (the Tariscope base URL, trailing `/` ignored): the first 63
/// bits of its SHA-256, so the key is non-negative and `LOCK_ROW` can rebuild it from two
/// unsigned halves. Every build and every host computes the same key.
pub fn lock_key(scope: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(scope.trim_end_matches('/').as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_one_key_whatever_the_trailing_slash() {
        let a = lock_key("https://billing.example:8443/api");
        assert_eq!(a, lock_key("https://billing.example:8443/api/"));
        assert_ne!(a, lock_key("https://billing2.example:8443/api"));
        assert!(a >= 0 && lock_key("x") >= 0);
        // The key of a known scope never changes between builds (daemons of two versions
        // meet on the same lock during an upgrade): the first 63 bits of SHA-256, as
        // `python3 -c "import hashlib; print(int.from_bytes(hashlib.sha256(b'http://127.0.0.1:8080').digest()[:8], 'big') >> 1)"`
        // prints.
        assert_eq!(
            lock_key("http://127.0.0.1:8080/"),
            7_603_531_606_594_959_539
        );
    }

    #[test]
    fn the_standby_timings_fit_in_the_takeover_time() {
        let e = Election::new("http://x", Duration::from_secs(15));
        // Silent for 2/3 of it ends the session; a standby tries every 1/6: 5/6 in all.
        assert!(e.takeover * 2 / 3 + e.retry_every() < e.takeover);
        // At least two heartbeats fit in the silence the server tolerates.
        assert!(e.heartbeat_every() * 2 < e.takeover * 2 / 3);
    }
}

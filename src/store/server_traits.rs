//! `server_traits`: what the daemon has seen of the server it talks to.
//!
//! Owns: recording and reading observed traits (today: whether subscriber records show
//! their numbers, [`DnListing`]). Must not: decide what a trait means for a push (that is
//! `sync::plan`) or guess a trait no run has observed.

use super::db::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::model::DnListing;

const DN_LISTING: &str = "subscriber_dns";

/// A trait as last observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed<T> {
    pub value: T,
    /// The run that first saw the current value, e.g. `pull run 12`.
    pub source: String,
    pub at: String,
}

impl Store {
    /// Records what the subscriber records of one run showed. Only a change is written (a
    /// re-pull that sees the same writes nothing): `source` and `at` say who saw it first.
    pub async fn record_dn_listing(
        &self,
        listing: DnListing,
        source: String,
        now: String,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO server_traits (name, value, source, observed_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, source = excluded.source, \
                 observed_at = excluded.observed_at WHERE server_traits.value != excluded.value",
                params![DN_LISTING, listing.as_str(), source, now],
            )
            .map(drop)
            .map_err(StoreError::sql("recording a server trait"))
        })
        .await
    }

    /// Whether subscriber records show numbers, as last observed (`None`: never observed).
    pub async fn dn_listing(&self) -> Result<Option<Observed<DnListing>>, StoreError> {
        self.read(|conn| {
            let row: Option<(String, String, String)> = conn
                .query_row(
                    "SELECT value, source, observed_at FROM server_traits WHERE name = ?1",
                    [DN_LISTING],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(StoreError::sql("reading a server trait"))?;
            row.map(|(value, source, at)| {
                let value = DnListing::parse(&value).ok_or(StoreError::Corrupt {
                    table: "server_traits",
                    column: "value",
                    value,
                })?;
                Ok(Observed { value, source, at })
            })
            .transpose()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_last_observation_wins() {
        for backend in crate::store::test_backends::backends().await {
            let store = crate::store::test_backends::on(&backend);
            assert_eq!(store.dn_listing().await.unwrap(), None);
            for (listing, run) in [
                (DnListing::NotShown, 1),
                (DnListing::Shown, 2),
                (DnListing::Shown, 3),
            ] {
                store
                    .record_dn_listing(
                        listing,
                        format!("pull run {run}"),
                        "2026-01-01T00:00:00Z".into(),
                    )
                    .await
                    .unwrap();
            }
            let seen = store.dn_listing().await.unwrap().unwrap();
            assert_eq!(
                (seen.value, seen.source.as_str()),
                (DnListing::Shown, "pull run 2")
            );
        }
    }
}

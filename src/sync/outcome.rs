//! The one rule that turns what a run's items did into the run's outcome, for pull and push.
//!
//! Owns: [`Tally`] (failed items, the first failure, whether every failure was the same
//! error) and [`Tally::outcome`]: `ok` when nothing failed; `failed` when nothing succeeded
//! (no call to Tariscope was answered, no write done) and every item failed with the same
//! error (a login that failed: connection refused, an HTML page instead of the API, 401 on
//! `/api/auth`), that error stated once; `partial` otherwise. Also [`Answered`], the wrapper
//! that counts answered pull calls. Must not: record anything (the jobs write `job_runs`).

use chrono::NaiveDate;

use super::options::Progress;
use super::remote::{Remote, RemoteResult, SubscriberRecords, TariffFilter};
use crate::model::{
    AccountSummary, Charge, Payment, Service, Subscriber, SubscriberId, SystemInfo, Tariff,
    TariffPlan,
};
use crate::store::Outcome;

/// The failed items of a run.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    failed: u64,
    /// The first failure: (item, error).
    first: Option<(String, String)>,
    /// Every failure so far had the first one's error.
    same: bool,
}

impl Tally {
    /// Records that `item` failed with `error` (the error's text, without the item).
    pub fn failure(&mut self, item: impl Into<String>, error: impl Into<String>) {
        let error = error.into();
        match &self.first {
            None => {
                self.first = Some((item.into(), error));
                self.same = true;
            }
            Some((_, first)) => self.same &= *first == error,
        }
        self.failed += 1;
    }

    /// Items that failed.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// The outcome and the run's error, given how many calls were answered (pull) or
    /// writes done (push) in the run.
    pub fn outcome(&self, answered: u64) -> (Outcome, Option<String>) {
        let Some((item, error)) = &self.first else {
            return (Outcome::Ok, None);
        };
        if answered == 0 && self.same {
            let error = match self.failed {
                1 => format!("nothing succeeded: {error}"),
                n => format!("nothing succeeded: all {n} items failed with: {error}"),
            };
            return (Outcome::Failed, Some(error));
        }
        (
            Outcome::Partial,
            Some(format!(
                "{} item(s) failed; first: {item}: {error}",
                self.failed
            )),
        )
    }
}

/// A [`Remote`] that counts the calls Tariscope answered (whatever the answer held) in the
/// run's [`Progress`].
pub struct Answered<'a, R> {
    inner: &'a R,
    progress: &'a Progress,
}

impl<'a, R: Remote> Answered<'a, R> {
    pub fn new(inner: &'a R, progress: &'a Progress) -> Self {
        Self { inner, progress }
    }

    fn note<T>(&self, result: RemoteResult<T>) -> RemoteResult<T> {
        if result.is_ok() {
            self.progress.add_answered();
        }
        result
    }
}

impl<R: Remote> Remote for Answered<'_, R> {
    fn lists_are_partial(&self) -> bool {
        self.inner.lists_are_partial()
    }

    async fn subscribers_by_node(&self, node: i64) -> RemoteResult<SubscriberRecords> {
        self.note(self.inner.subscribers_by_node(node).await)
    }

    async fn subscribers_by_department(&self, department: i64) -> RemoteResult<SubscriberRecords> {
        self.note(self.inner.subscribers_by_department(department).await)
    }

    async fn subscriber_get(&self, id: SubscriberId) -> RemoteResult<Option<Subscriber>> {
        self.note(self.inner.subscriber_get(id).await)
    }

    async fn account_payments(
        &self,
        id: SubscriberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> RemoteResult<Vec<Payment>> {
        self.note(self.inner.account_payments(id, from, to).await)
    }

    async fn account_charges(
        &self,
        id: SubscriberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> RemoteResult<Vec<Charge>> {
        self.note(self.inner.account_charges(id, from, to).await)
    }

    async fn account_summary(
        &self,
        id: SubscriberId,
        date: NaiveDate,
    ) -> RemoteResult<AccountSummary> {
        self.note(self.inner.account_summary(id, date).await)
    }

    async fn tariff_plans(&self) -> RemoteResult<Vec<TariffPlan>> {
        self.note(self.inner.tariff_plans().await)
    }

    async fn tariff_details(&self, filter: &TariffFilter) -> RemoteResult<Vec<Tariff>> {
        self.note(self.inner.tariff_details(filter).await)
    }

    async fn services(&self) -> RemoteResult<Vec<Service>> {
        self.note(self.inner.services().await)
    }

    async fn system_info(&self) -> RemoteResult<SystemInfo> {
        self.note(self.inner.system_info().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_the_outcome() {
        assert_eq!(Tally::default().outcome(0), (Outcome::Ok, None));

        let mut same = Tally::default();
        for item in ["tariffs.plans", "services.list", "tariscope.summary"] {
            same.failure(item, "api.auth: connection refused by 127.0.0.1:1");
        }
        let (outcome, error) = same.outcome(0);
        assert_eq!(outcome, Outcome::Failed);
        let error = error.unwrap();
        assert_eq!(
            error,
            "nothing succeeded: all 3 items failed with: api.auth: connection refused by 127.0.0.1:1"
        );
        assert_eq!(
            error.matches("connection refused").count(),
            1,
            "stated once"
        );

        // Something was answered: partial, whatever the failures.
        assert_eq!(same.outcome(1).0, Outcome::Partial);

        // Nothing answered, but the failures differ: partial, naming the first.
        let mut mixed = same.clone();
        mixed.failure("services.list", "HTTP 500");
        let (outcome, error) = mixed.outcome(0);
        assert_eq!(outcome, Outcome::Partial);
        assert_eq!(
            error.unwrap(),
            "4 item(s) failed; first: tariffs.plans: api.auth: connection refused by 127.0.0.1:1"
        );
    }
}

//! The read side of Tariscope as the pull jobs see it.
//!
//! Owns: the `Remote` trait (1:1 with the read methods of `crate::api::TariscopeClient`,
//! returning `crate::model` types) and `RemoteError`, the small error the jobs classify.
//! The lead implements `Remote` for the real client; tests use `super::fake::FakeRemote`.
//! Must not: know HTTP, wire formats or retries (the client retries and rate-limits inside;
//! an error that reaches a job is final for that item).

use std::fmt;
use std::future::Future;

use chrono::NaiveDate;

use crate::model::{
    AccountSummary, Charge, Direction, Payment, Service, Subscriber, SubscriberId, SystemInfo,
    Tariff, TariffPlan,
};

/// What kind of failure a remote call had; the jobs decide per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteErrorKind {
    /// Timeouts, 5xx, 429 after the client's retries: the item fails, the run goes on.
    Transient,
    /// The server says the record does not exist.
    NotFound,
    /// The answer could not be decoded: the item fails, the run goes on.
    BadData,
    /// Credentials or method rights: the whole run stops (every call would fail the same way).
    Auth,
    /// Anything else: the item fails.
    Other,
}

impl fmt::Display for RemoteErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Transient => "transient API failure",
            Self::NotFound => "not found",
            Self::BadData => "undecodable API answer",
            Self::Auth => "API authentication or rights failure",
            Self::Other => "API failure",
        })
    }
}

/// A failed remote call, as the jobs see it.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RemoteError {
    pub kind: RemoteErrorKind,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl RemoteError {
    /// An error without a source.
    pub fn new(kind: RemoteErrorKind, message: impl Into<String>) -> Self {
        RemoteError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error keeping its cause.
    pub fn with_source(
        kind: RemoteErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        RemoteError {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Filter of `tariffs.details` (`None` means "all"). `crate::sync::adapter` maps it to
/// the client's `model::TariffFilter` (where `0` means "all").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TariffFilter {
    pub provider_id: Option<i64>,
    pub plan_id: Option<i64>,
    pub rate_id: Option<i64>,
    pub direction: Direction,
}

/// Result of a remote call.
pub type RemoteResult<T> = Result<T, RemoteError>;

/// The records of a subscriber list, decoded as they are read: a record that cannot be
/// decoded is an `Err` item (kind `BadData`) and the records after it still come.
pub type SubscriberRecords = Box<dyn Iterator<Item = RemoteResult<Subscriber>> + Send>;

/// The Tariscope read methods the pull jobs use. Implementations must be safe to call
/// concurrently (the jobs fan out per subscriber) and do their own rate limiting and retries.
pub trait Remote: Send + Sync {
    /// True when `subscriber.list.*` return partial records, so each listed subscriber must
    /// be fetched with `subscriber.get`.
    fn lists_are_partial(&self) -> bool;

    /// `subscriber.list.node`: the subscribers of every department of `node`.
    fn subscribers_by_node(
        &self,
        node: i64,
    ) -> impl Future<Output = RemoteResult<SubscriberRecords>> + Send;

    /// `subscriber.list.department`: the subscribers of `department` and its sub-departments.
    fn subscribers_by_department(
        &self,
        department: i64,
    ) -> impl Future<Output = RemoteResult<SubscriberRecords>> + Send;

    /// `subscriber.get` by id; `Ok(None)` when the server says it does not exist.
    fn subscriber_get(
        &self,
        id: SubscriberId,
    ) -> impl Future<Output = RemoteResult<Option<Subscriber>>> + Send;

    /// `accounts.payments` of one subscriber, `from..=to`.
    fn account_payments(
        &self,
        id: SubscriberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = RemoteResult<Vec<Payment>>> + Send;

    /// `accounts.charges` of one subscriber, `from..=to`.
    fn account_charges(
        &self,
        id: SubscriberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = RemoteResult<Vec<Charge>>> + Send;

    /// `accounts.summary` of one subscriber for one day.
    fn account_summary(
        &self,
        id: SubscriberId,
        date: NaiveDate,
    ) -> impl Future<Output = RemoteResult<AccountSummary>> + Send;

    /// `tariffs.plans`.
    fn tariff_plans(&self) -> impl Future<Output = RemoteResult<Vec<TariffPlan>>> + Send;

    /// `tariffs.details`.
    fn tariff_details(
        &self,
        filter: &TariffFilter,
    ) -> impl Future<Output = RemoteResult<Vec<Tariff>>> + Send;

    /// `services.list`.
    fn services(&self) -> impl Future<Output = RemoteResult<Vec<Service>>> + Send;

    /// `tariscope.summary` (version, database, build, serial, edition).
    fn system_info(&self) -> impl Future<Output = RemoteResult<SystemInfo>> + Send;
}

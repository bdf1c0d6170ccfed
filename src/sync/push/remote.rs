//! The write side of Tariscope as the push executor sees it.
//!
//! Owns: the [`PushRemote`] trait (the writes and the look-ups that settle an unknown
//! outcome) and [`WriteError`], classified the way exactly-once needs it.
//! Must not: retry (the client retries what is safe; everything here is final per call).

use std::fmt;
use std::future::Future;

use crate::model::{
    CreatedSubscriber, DnAssignment, NewDn, NewSubscriber, Subscriber, SubscriberId,
    SubscriberPatch,
};

/// How a write failed, as exactly-once needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteErrorKind {
    /// The request may have been applied: look the record up before sending it again.
    OutcomeUnknown,
    /// The server says it exists already (HTTP 409): a DN taken, an account number in use.
    AlreadyExists,
    /// The server refused the request as it stands (other 4xx): retrying will not help.
    Rejected,
    /// Credentials or method rights.
    Auth,
    /// Transient trouble that outlasted the client's retries.
    Unavailable,
}

impl fmt::Display for WriteErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OutcomeUnknown => "outcome unknown",
            Self::AlreadyExists => "already exists",
            Self::Rejected => "rejected by the server",
            Self::Auth => "credentials or method rights",
            Self::Unavailable => "server unavailable",
        })
    }
}

/// A failed write or look-up, keeping its cause (the client's error) as its source.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct WriteError {
    pub kind: WriteErrorKind,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl WriteError {
    /// An error without a source.
    pub fn new(kind: WriteErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error keeping its cause.
    pub fn with_source(
        kind: WriteErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

pub type WriteResult<T> = Result<T, WriteError>;

/// The calls the push executor makes. Implemented for the real client in `sync::adapter`.
pub trait PushRemote: Send + Sync {
    fn create(
        &self,
        s: &NewSubscriber,
    ) -> impl Future<Output = WriteResult<CreatedSubscriber>> + Send;
    /// `Some` when the server answers with the updated record.
    fn update(
        &self,
        p: &SubscriberPatch,
    ) -> impl Future<Output = WriteResult<Option<Subscriber>>> + Send;
    fn dnadd(&self, dn: &NewDn) -> impl Future<Output = WriteResult<DnAssignment>> + Send;
    fn get(&self, id: SubscriberId)
    -> impl Future<Output = WriteResult<Option<Subscriber>>> + Send;
    fn find_by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = WriteResult<Option<Subscriber>>> + Send;
    fn list_department(
        &self,
        department: i64,
    ) -> impl Future<Output = WriteResult<Vec<Subscriber>>> + Send;
}

//! `Remote` over the real client: [`ApiRemote`] wraps a `crate::api::TariscopeClient`.
//!
//! Owns: mapping each `Remote` method to the client method of the same name, and mapping
//! `ApiError` to the jobs' `RemoteErrorKind` (decode -> bad data, login / rights -> auth,
//! 404 -> not found, connection / timeout / 5xx / 429 / exhausted retries -> transient).
//! Must not: retry, rate-limit or decode (the client does all three), or see HTTP types.

use chrono::NaiveDate;

use super::remote::{Remote, RemoteError, RemoteErrorKind, RemoteResult, TariffFilter};
use crate::api::{ApiError, TariscopeClient};
use crate::model::{
    AccountSummary, Charge, Payment, Service, Subscriber, SubscriberId, SystemInfo, Tariff,
    TariffPlan,
};

/// The real Tariscope client as the pull jobs' `Remote`.
pub struct ApiRemote {
    client: TariscopeClient,
}

impl ApiRemote {
    pub fn new(client: TariscopeClient) -> ApiRemote {
        ApiRemote { client }
    }

    /// The wrapped client (for its statistics).
    pub fn client(&self) -> &TariscopeClient {
        &self.client
    }
}

/// The jobs' kind of an API error.
pub fn classify(err: &ApiError) -> RemoteErrorKind {
    match err {
        ApiError::Decode { .. } => RemoteErrorKind::BadData,
        ApiError::LoginRejected { .. } | ApiError::Unauthorized { .. } => RemoteErrorKind::Auth,
        ApiError::Exhausted { source, .. } | ApiError::OutcomeUnknown { source, .. } => {
            match classify(source) {
                RemoteErrorKind::Other => RemoteErrorKind::Transient,
                kind => kind,
            }
        }
        e if e.is_not_found() => RemoteErrorKind::NotFound,
        ApiError::Connect { .. } | ApiError::Timeout { .. } | ApiError::Transport { .. } => {
            RemoteErrorKind::Transient
        }
        ApiError::Status { status, .. } if *status == 429 || *status == 408 || *status >= 500 => {
            RemoteErrorKind::Transient
        }
        _ => RemoteErrorKind::Other,
    }
}

fn remote(err: ApiError) -> RemoteError {
    let kind = classify(&err);
    RemoteError::with_source(kind, err.to_string(), err)
}

impl Remote for ApiRemote {
    fn lists_are_partial(&self) -> bool {
        self.client.profile().lists_are_partial
    }

    async fn subscribers_by_node(&self, node: i64) -> RemoteResult<Vec<Subscriber>> {
        self.client.subscribers_by_node(node).await.map_err(remote)
    }

    async fn subscribers_by_department(&self, department: i64) -> RemoteResult<Vec<Subscriber>> {
        self.client
            .subscribers_by_department(department)
            .await
            .map_err(remote)
    }

    async fn subscriber_get(&self, id: SubscriberId) -> RemoteResult<Option<Subscriber>> {
        self.client.subscriber_get(id).await.map_err(remote)
    }

    async fn account_payments(
        &self,
        id: SubscriberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> RemoteResult<Vec<Payment>> {
        self.client
            .account_payments(id, from, to)
            .await
            .map_err(remote)
    }

    async fn account_charges(
        &self,
        id: SubscriberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> RemoteResult<Vec<Charge>> {
        self.client
            .account_charges(id, from, to)
            .await
            .map_err(remote)
    }

    async fn account_summary(
        &self,
        id: SubscriberId,
        date: NaiveDate,
    ) -> RemoteResult<AccountSummary> {
        self.client.account_summary(id, date).await.map_err(remote)
    }

    async fn tariff_plans(&self) -> RemoteResult<Vec<TariffPlan>> {
        self.client.tariff_plans().await.map_err(remote)
    }

    async fn tariff_details(&self, filter: &TariffFilter) -> RemoteResult<Vec<Tariff>> {
        self.client.tariff_details(filter).await.map_err(remote)
    }

    async fn services(&self) -> RemoteResult<Vec<Service>> {
        self.client.services().await.map_err(remote)
    }

    async fn system_info(&self) -> RemoteResult<SystemInfo> {
        self.client.system_info().await.map_err(remote)
    }
}

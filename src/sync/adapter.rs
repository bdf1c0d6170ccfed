//! The real client behind the sync engine's two remote traits.
//!
//! Owns: implementing [`Remote`] (pull) and [`PushRemote`] (push) for
//! [`TariscopeClient`], and naming each [`retry::Kind`] in the jobs' own error kinds.
//! Must not: retry or rate-limit (the client does both inside), or classify an error itself
//! (status codes, variants): `crate::api::retry` is the one place that does.

use chrono::NaiveDate;

use super::push::{PushRemote, WriteError, WriteErrorKind, WriteResult};
use super::remote::{
    Remote, RemoteError, RemoteErrorKind, RemoteResult, SubscriberRecords, TariffFilter,
};
use crate::api::retry::{self, Kind};
use crate::api::{ApiError, TariscopeClient};
use crate::model::{
    AccountSummary, Charge, CreatedSubscriber, DnAssignment, NewDn, NewSubscriber, Payment,
    Service, Subscriber, SubscriberId, SubscriberPatch, SystemInfo, Tariff, TariffPlan,
};

fn read_error(e: ApiError) -> RemoteError {
    let kind = match retry::kind(&e) {
        Kind::Auth => RemoteErrorKind::Auth,
        Kind::NotFound => RemoteErrorKind::NotFound,
        Kind::BadData => RemoteErrorKind::BadData,
        Kind::Transient => RemoteErrorKind::Transient,
        Kind::OutcomeUnknown | Kind::AlreadyExists | Kind::Rejected | Kind::Config => {
            RemoteErrorKind::Other
        }
    };
    RemoteError::with_source(kind, e.to_string(), e)
}

fn write_error(e: ApiError) -> WriteError {
    let kind = match retry::kind(&e) {
        Kind::OutcomeUnknown => WriteErrorKind::OutcomeUnknown,
        Kind::Auth => WriteErrorKind::Auth,
        Kind::AlreadyExists => WriteErrorKind::AlreadyExists,
        Kind::NotFound | Kind::Rejected => WriteErrorKind::Rejected,
        Kind::Transient | Kind::BadData | Kind::Config => WriteErrorKind::Unavailable,
    };
    WriteError::with_source(kind, e.to_string(), e)
}

impl Remote for TariscopeClient {
    fn lists_are_partial(&self) -> bool {
        self.profile().lists_are_partial
    }

    async fn subscribers_by_node(&self, node: i64) -> RemoteResult<SubscriberRecords> {
        let records = self
            .subscriber_records_by_node(node)
            .await
            .map_err(read_error)?;
        Ok(Box::new(records.map(|r| r.map_err(read_error))))
    }

    async fn subscribers_by_department(&self, department: i64) -> RemoteResult<SubscriberRecords> {
        let records = self
            .subscriber_records_by_department(department)
            .await
            .map_err(read_error)?;
        Ok(Box::new(records.map(|r| r.map_err(read_error))))
    }

    async fn subscriber_get(&self, id: SubscriberId) -> RemoteResult<Option<Subscriber>> {
        TariscopeClient::subscriber_get(self, id)
            .await
            .map_err(read_error)
    }

    async fn account_payments(
        &self,
        id: SubscriberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> RemoteResult<Vec<Payment>> {
        TariscopeClient::account_payments(self, id, from, to)
            .await
            .map_err(read_error)
    }

    async fn account_charges(
        &self,
        id: SubscriberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> RemoteResult<Vec<Charge>> {
        TariscopeClient::account_charges(self, id, from, to)
            .await
            .map_err(read_error)
    }

    async fn account_summary(
        &self,
        id: SubscriberId,
        date: NaiveDate,
    ) -> RemoteResult<AccountSummary> {
        TariscopeClient::account_summary(self, id, date)
            .await
            .map_err(read_error)
    }

    async fn tariff_plans(&self) -> RemoteResult<Vec<TariffPlan>> {
        TariscopeClient::tariff_plans(self)
            .await
            .map_err(read_error)
    }

    async fn tariff_details(&self, filter: &TariffFilter) -> RemoteResult<Vec<Tariff>> {
        let f = crate::model::TariffFilter {
            provider_id: filter.provider_id.unwrap_or(0),
            plan_id: filter.plan_id.unwrap_or(0),
            rate_id: filter.rate_id.unwrap_or(0),
            direction: filter.direction,
        };
        TariscopeClient::tariff_details(self, &f)
            .await
            .map_err(read_error)
    }

    async fn services(&self) -> RemoteResult<Vec<Service>> {
        TariscopeClient::services(self).await.map_err(read_error)
    }

    async fn system_info(&self) -> RemoteResult<SystemInfo> {
        TariscopeClient::system_info(self).await.map_err(read_error)
    }
}

impl PushRemote for TariscopeClient {
    async fn create(&self, s: &NewSubscriber) -> WriteResult<CreatedSubscriber> {
        self.subscriber_create(s).await.map_err(write_error)
    }

    async fn update(&self, p: &SubscriberPatch) -> WriteResult<Option<Subscriber>> {
        self.subscriber_update(p).await.map_err(write_error)
    }

    async fn dnadd(&self, dn: &NewDn) -> WriteResult<DnAssignment> {
        self.subscriber_dnadd(dn).await.map_err(write_error)
    }

    async fn get(&self, id: SubscriberId) -> WriteResult<Option<Subscriber>> {
        self.subscriber_get(id).await.map_err(write_error)
    }

    async fn find_by_email(&self, email: &str) -> WriteResult<Option<Subscriber>> {
        self.subscriber_get_by_email(email)
            .await
            .map_err(write_error)
    }

    async fn list_department(&self, department: i64) -> WriteResult<Vec<Subscriber>> {
        self.subscribers_by_department(department)
            .await
            .map_err(write_error)
    }
}

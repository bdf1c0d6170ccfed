//! The typed API methods of [`TariscopeClient`]: one async fn per Tariscope method,
//! taking and returning `crate::model` types.
//!
//! Owns: which parameters each method sends (by logical key; the profile names them on
//! the wire) and what an empty, 204 or 404 answer means for it. Must not: touch HTTP
//! directly (`client.rs`) or read wire fields (`decode.rs`).

use chrono::{Datelike, NaiveDate};
use serde_json::Value;

use super::client::{Reply, TariscopeClient};
use super::decode;
use super::encode::Param;
use super::error::{ApiError, excerpt};
use super::listing::Listing;
use super::wire::{self, WireError};
use crate::model::{
    AccountSummary, Charge, CreatedSubscriber, DnAssignment, FieldValue, NewDn, NewPayment,
    NewSubscriber, Payment, RecordedPayment, Service, Subscriber, SubscriberId, SubscriberPatch,
    Tariff, TariffFilter, TariffPlan, TariffTime,
};

impl TariscopeClient {
    pub(crate) fn parse(&self, method: &str, reply: &Reply) -> Result<Value, ApiError> {
        wire::parse_body(&reply.body, self.inner.format).map_err(|e| decode_error(method, reply, e))
    }

    /// A single record; `None` for 404, 204, an empty body or an empty result.
    pub(crate) fn one<T>(
        &self,
        method: &str,
        reply: &Reply,
        f: impl FnOnce(&Value) -> Result<T, WireError>,
    ) -> Result<Option<T>, ApiError> {
        if reply.is_empty_result() {
            return Ok(None);
        }
        let value = self.parse(method, reply)?;
        match wire::single(&value) {
            None => Ok(None),
            Some(v) => f(v).map(Some).map_err(|e| decode_error(method, reply, e)),
        }
    }

    /// A single record that must be there (404 is an error).
    pub(crate) fn required<T>(
        &self,
        method: &str,
        reply: &Reply,
        f: impl FnOnce(&Value) -> Result<T, WireError>,
    ) -> Result<T, ApiError> {
        if reply.status == 404 {
            return Err(not_found(method, reply));
        }
        self.one(method, reply, f)?
            .ok_or_else(|| decode_error(method, reply, WireError::new("(body)", "empty answer")))
    }

    /// For a non-idempotent write: a 2xx answer that cannot be read (empty, or not
    /// decodable) means the write happened but its result is unknown, so the caller must
    /// look the record up rather than resend: "outcome unknown".
    pub(crate) fn written<T>(
        &self,
        method: &str,
        result: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        match result {
            Err(e)
                if self
                    .profile()
                    .method(method)
                    .is_some_and(|m| super::retry::outcome_unknown(&e, true, m.idempotent)) =>
            {
                self.inner
                    .counters
                    .outcome_unknown
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(method, error = %e, "write answered but unreadable; outcome unknown");
                Err(ApiError::OutcomeUnknown {
                    method: method.to_owned(),
                    source: Box::new(e),
                })
            }
            other => other,
        }
    }

    /// A list read whole; 404 is an empty list (the subscriber lists, where 404 is an
    /// error, are read by `listing`).
    pub(crate) fn list<T>(
        &self,
        method: &str,
        reply: &Reply,
        f: impl Fn(&Value) -> Result<T, WireError>,
    ) -> Result<Vec<T>, ApiError> {
        if reply.is_empty_result() {
            return Ok(Vec::new());
        }
        let value = self.parse(method, reply)?;
        wire::list_items(&value)
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                f(v).map_err(|e| {
                    decode_error(
                        method,
                        reply,
                        WireError::new(format!("[{i}].{}", e.field), e.reason),
                    )
                })
            })
            .collect()
    }

    /// `subscriber.get` by id; `None` if there is no such subscriber.
    pub async fn subscriber_get(&self, id: SubscriberId) -> Result<Option<Subscriber>, ApiError> {
        const M: &str = "subscriber.get";
        let reply = self.call(M, &[("id", Param::Int(id))]).await?;
        self.one(M, &reply, |v| decode::subscriber_in(v, self.dns_field()))
    }

    /// `subscriber.get` by e-mail; `None` if no subscriber has it.
    pub async fn subscriber_get_by_email(
        &self,
        email: &str,
    ) -> Result<Option<Subscriber>, ApiError> {
        const M: &str = "subscriber.get";
        let reply = self
            .call(M, &[("email", Param::Text(email.to_owned()))])
            .await?;
        self.one(M, &reply, |v| decode::subscriber_in(v, self.dns_field()))
    }

    /// A list read lazily (see [`Listing`]); 404 is an error (the lists of an unknown
    /// node or department).
    /// The field that lists a subscriber's numbers, when the profile renames `dns`.
    fn dns_field(&self) -> Option<&str> {
        self.profile().dns_field.as_deref()
    }

    /// A subscriber list answer (see [`Self::listing`]).
    fn subscriber_listing(
        &self,
        method: &'static str,
        reply: Reply,
    ) -> Result<Listing<Subscriber>, ApiError> {
        let field = self.dns_field().map(str::to_owned);
        let same = field.clone();
        self.listing(
            method,
            reply,
            move |f: &wire::Fields<'_>| decode::subscriber_fields_in(f, field.as_deref()),
            move |v: &Value| decode::subscriber_in(v, same.as_deref()),
        )
    }

    fn listing<T>(
        &self,
        method: &'static str,
        reply: Reply,
        fields: impl Fn(&wire::Fields<'_>) -> Result<T, WireError> + Send + Sync + 'static,
        value: impl Fn(&Value) -> Result<T, WireError> + Send + Sync + 'static,
    ) -> Result<Listing<T>, ApiError> {
        if reply.status == 404 {
            return Err(not_found(method, &reply));
        }
        if reply.is_empty_result() {
            return Ok(Listing::empty(method));
        }
        Listing::new(method, reply.body, self.inner.format, fields, value)
    }

    /// `subscriber.list.department`. An unknown department is an error (`is_not_found`).
    /// With `profile.lists_are_partial`, records carry only id and name.
    pub async fn subscribers_by_department(
        &self,
        department_id: i64,
    ) -> Result<Vec<Subscriber>, ApiError> {
        self.subscriber_records_by_department(department_id)
            .await?
            .collect()
    }

    /// [`Self::subscribers_by_department`] decoded one record at a time: a record that
    /// cannot be decoded is an error item and the others still come.
    pub async fn subscriber_records_by_department(
        &self,
        department_id: i64,
    ) -> Result<Listing<Subscriber>, ApiError> {
        const M: &str = "subscriber.list.department";
        let reply = self.call(M, &[("id", Param::Int(department_id))]).await?;
        self.subscriber_listing(M, reply)
    }

    /// `subscriber.list.node`. An unknown node is an error (`is_not_found`).
    pub async fn subscribers_by_node(&self, node_id: i64) -> Result<Vec<Subscriber>, ApiError> {
        self.subscriber_records_by_node(node_id).await?.collect()
    }

    /// [`Self::subscribers_by_node`] decoded one record at a time (see
    /// [`Self::subscriber_records_by_department`]).
    pub async fn subscriber_records_by_node(
        &self,
        node_id: i64,
    ) -> Result<Listing<Subscriber>, ApiError> {
        const M: &str = "subscriber.list.node";
        let reply = self.call(M, &[("id", Param::Int(node_id))]).await?;
        self.subscriber_listing(M, reply)
    }

    /// `subscriber.update` with only the patch's fields; `None` if the subscriber does
    /// not exist. An empty success answer is followed by a `subscriber.get`.
    pub async fn subscriber_update(
        &self,
        patch: &SubscriberPatch,
    ) -> Result<Option<Subscriber>, ApiError> {
        const M: &str = "subscriber.update";
        let keys: Vec<String> = patch
            .fields
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .collect();
        let mut params: Vec<(&str, Param)> = vec![("id", Param::Int(patch.id))];
        for (key, (_, value)) in keys.iter().zip(&patch.fields) {
            params.push((key.as_str(), field_param(value)));
        }
        let reply = self.call(M, &params).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        match self.one(M, &reply, |v| decode::subscriber_in(v, self.dns_field()))? {
            Some(s) => Ok(Some(s)),
            None => self.subscriber_get(patch.id).await,
        }
    }

    /// `subscriber.create` (not idempotent: a lost answer gives `is_outcome_unknown`).
    pub async fn subscriber_create(
        &self,
        s: &NewSubscriber,
    ) -> Result<CreatedSubscriber, ApiError> {
        const M: &str = "subscriber.create";
        let mut params: Vec<(&str, Param)> = vec![("fullname", Param::Text(s.fullname.clone()))];
        let mut opt = |key: &'static str, value: Option<Param>| {
            if let Some(v) = value {
                params.push((key, v));
            }
        };
        opt("departmentid", s.department_id.map(Param::Int));
        opt(
            "subscribertype",
            s.subscriber_type.map(|t| Param::Int(t.code())),
        );
        opt("connectiondate", s.connectiondate.map(Param::Date));
        opt("contactnumber", s.contract_number.clone().map(Param::Text));
        opt("contractdate", s.contractdate.map(Param::Date));
        opt("accountnumber", s.account_number.clone().map(Param::Text));
        opt("personalcode", s.personalcode.clone().map(Param::Text));
        opt("edrpou", s.edrpou.clone().map(Param::Text));
        opt("taxcode", s.taxcode.clone().map(Param::Text));
        opt("bankcode", s.bank_code.clone().map(Param::Text));
        opt("bankname", s.bankname.clone().map(Param::Text));
        opt("bankaccount", s.bankaccount.clone().map(Param::Text));
        opt("rateplanid", s.rateplan_id.map(Param::Int));
        let reply = self.call(M, &params).await?;
        self.written(M, self.required(M, &reply, decode::created))
    }

    /// `subscriber.dnadd` (not idempotent). Fields the answer lacks come from `dn`.
    pub async fn subscriber_dnadd(&self, dn: &NewDn) -> Result<DnAssignment, ApiError> {
        const M: &str = "subscriber.dnadd";
        let mut params: Vec<(&str, Param)> = vec![
            ("subscriberid", Param::Int(dn.subscriber_id)),
            ("dn", Param::Text(dn.dn.clone())),
            ("pbxid", Param::Int(dn.pbx_id)),
        ];
        if let Some(d) = dn.from_date {
            params.push(("fromdate", Param::Date(d)));
        }
        if let Some(d) = &dn.description {
            params.push(("description", Param::Text(d.clone())));
        }
        let reply = self.call(M, &params).await?;
        let fallback = Some((dn.dn.as_str(), dn.from_date, dn.description.as_deref()));
        self.written(
            M,
            self.required(M, &reply, |v| decode::dn(v, dn.subscriber_id, fallback)),
        )
    }

    /// `accounts.summary` for one day (`year`, `month`, `day` unpadded, as documented).
    pub async fn account_summary(
        &self,
        id: SubscriberId,
        date: NaiveDate,
    ) -> Result<AccountSummary, ApiError> {
        const M: &str = "accounts.summary";
        let params = [
            ("id", Param::Int(id)),
            ("year", Param::Int(i64::from(date.year()))),
            ("month", Param::Int(i64::from(date.month()))),
            ("day", Param::Int(i64::from(date.day()))),
        ];
        let reply = self.call(M, &params).await?;
        self.required(M, &reply, |v| decode::summary(v, id, date))
    }

    /// `accounts.charges` from `from` to `to` (inclusive); 404 is an empty list.
    pub async fn account_charges(
        &self,
        id: SubscriberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Charge>, ApiError> {
        const M: &str = "accounts.charges";
        let params = [
            ("id", Param::Int(id)),
            ("fromdate", Param::Date(from)),
            ("todate", Param::Date(to)),
        ];
        let reply = self.call(M, &params).await?;
        self.list(M, &reply, |v| decode::charge(v, id))
    }

    /// `accounts.payments` from `from` to `to` (inclusive, `paymentid=0`); 404 is empty.
    pub async fn account_payments(
        &self,
        id: SubscriberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Payment>, ApiError> {
        const M: &str = "accounts.payments";
        let params = [
            ("id", Param::Int(id)),
            ("fromdate", Param::Date(from)),
            ("todate", Param::Date(to)),
            ("paymentid", Param::Int(0)),
        ];
        let reply = self.call(M, &params).await?;
        self.list(M, &reply, |v| decode::payment(v, id))
    }

    /// `accounts.payments` with a non-zero `paymentid`: the payment if it exists.
    pub async fn payment_exists(
        &self,
        id: SubscriberId,
        payment_id: i64,
    ) -> Result<Option<Payment>, ApiError> {
        const M: &str = "accounts.payments";
        let params = [
            ("id", Param::Int(id)),
            ("paymentid", Param::Int(payment_id)),
        ];
        let reply = self.call(M, &params).await?;
        let found = self.list(M, &reply, |v| decode::payment(v, id))?;
        Ok(found.into_iter().find(|p| p.payment_id == payment_id))
    }

    /// `accounts.payment` (not idempotent: a lost answer gives `is_outcome_unknown`).
    pub async fn account_payment(&self, p: &NewPayment) -> Result<RecordedPayment, ApiError> {
        const M: &str = "accounts.payment";
        let mut params: Vec<(&str, Param)> = vec![
            ("id", Param::Int(p.subscriber_id)),
            ("paymentday", Param::Date(p.payment_day)),
            ("payment", Param::Decimal(p.amount)),
            ("paymenttype", Param::Int(p.payment_type.code())),
        ];
        if let Some(bank) = &p.bank {
            params.push(("bank", Param::Text(bank.clone())));
        }
        let reply = self.call(M, &params).await?;
        let result = self.required(M, &reply, |v| {
            decode::recorded_payment(v, p.subscriber_id, p.payment_day)
        });
        self.written(M, result)
    }

    /// `tariffs.plans` (active plans).
    pub async fn tariff_plans(&self) -> Result<Vec<TariffPlan>, ApiError> {
        const M: &str = "tariffs.plans";
        let reply = self.call(M, &[]).await?;
        self.list(M, &reply, decode::tariff_plan)
    }

    /// `tariffs.details` with the documented filters (0 = all).
    pub async fn tariff_details(&self, filter: &TariffFilter) -> Result<Vec<Tariff>, ApiError> {
        const M: &str = "tariffs.details";
        let params = [
            ("providerid", Param::Int(filter.provider_id)),
            ("planid", Param::Int(filter.plan_id)),
            (
                "direction",
                Param::Text(filter.direction.as_str().to_owned()),
            ),
            ("rateid", Param::Int(filter.rate_id)),
        ];
        let reply = self.call(M, &params).await?;
        self.list(M, &reply, decode::tariff)
    }

    /// `tariffs.time` of one tariff.
    pub async fn tariff_time(&self, rate_id: i64) -> Result<Vec<TariffTime>, ApiError> {
        const M: &str = "tariffs.time";
        let reply = self.call(M, &[("rateid", Param::Int(rate_id))]).await?;
        self.list(M, &reply, decode::tariff_time)
    }

    /// `services.list` (active services).
    pub async fn services(&self) -> Result<Vec<Service>, ApiError> {
        const M: &str = "services.list";
        let reply = self.call(M, &[]).await?;
        self.list(M, &reply, decode::service)
    }
}

fn field_param(v: &FieldValue) -> Param {
    fn or_null<T>(v: &Option<T>, f: impl Fn(&T) -> Param) -> Param {
        v.as_ref().map(f).unwrap_or(Param::Null)
    }
    match v {
        FieldValue::Text(t) => or_null(t, |s| Param::Text(s.clone())),
        FieldValue::Date(d) => or_null(d, |d| Param::Date(*d)),
        FieldValue::Int(i) => or_null(i, |i| Param::Int(*i)),
        FieldValue::Bool(b) => or_null(b, |b| Param::Bool(*b)),
        FieldValue::Decimal(d) => or_null(d, |d| Param::Decimal(*d)),
    }
}

pub(crate) fn decode_error(method: &str, reply: &Reply, e: WireError) -> ApiError {
    ApiError::Decode {
        method: method.to_owned(),
        field: e.field,
        reason: e.reason,
        excerpt: excerpt(&reply.body, 120),
    }
}

pub(crate) fn not_found(method: &str, reply: &Reply) -> ApiError {
    ApiError::Status {
        method: method.to_owned(),
        status: 404,
        code: None,
        message: None,
        retry_after: None,
        body_excerpt: excerpt(&reply.body, 200),
    }
}

//! Start-up configuration of the emulator: dataset size, wire variant, API users, token
//! lifetime and fault plan.
//!
//! Owns: the public configuration types of `tariscope_sync::sim` and their JSON form for
//! the control API and the `--faults` file (durations in milliseconds).
//! Must not: know HTTP, the dataset generator or the serialisers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the emulator needs at start.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub dataset: DatasetConfig,
    pub wire: WireVariant,
    /// API users. Default: `[SimUser::demo()]` (demo/demo, every right).
    pub users: Vec<SimUser>,
    /// Lifetime of issued tokens. Default 6 h. Zero issues tokens that are already expired.
    pub token_ttl: Duration,
    /// Faults active from the start. Default: none.
    pub faults: FaultPlan,
    /// Data variant: book balance adjustments that no list shows on random days (about one
    /// per subscriber a month; see `sim::adjustments`). Default: off.
    pub hidden_adjustments: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            dataset: DatasetConfig::default(),
            wire: WireVariant::default(),
            users: vec![SimUser::demo()],
            token_ttl: Duration::from_secs(6 * 3600),
            faults: FaultPlan::default(),
            hidden_adjustments: false,
        }
    }
}

/// Size knobs and seed of the generated dataset. The same values give the same data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetConfig {
    pub seed: u64,
    pub nodes: usize,
    pub departments_per_node: usize,
    pub subscribers: usize,
    /// Days of payment/charge history, ending at `end_date` (inclusive).
    pub days: u32,
    /// Last day of history; `None` = today (UTC) at start.
    pub end_date: Option<chrono::NaiveDate>,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            nodes: 2,
            departments_per_node: 4,
            subscribers: 200,
            days: 60,
            end_date: None,
        }
    }
}

/// How responses are serialised. `Default` is the reference wire profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WireVariant {
    pub key_case: KeyCase,
    pub numbers_as_strings: bool,
    pub dates: DateStyle,
    pub envelope: Envelope,
    pub partial_lists: bool,
    /// Subscriber records (`subscriber.get`, both lists, the answer of `subscriber.update`)
    /// carry no `dns` field: a server that does not show a subscriber's numbers.
    pub records_without_dns: bool,
    /// `subscriber.dnadd` of a number already assigned is accepted as one more assignment
    /// (a new record with its own `fromdate`) instead of refused with 409.
    pub accept_duplicate_dns: bool,
    pub system_fields: SystemFields,
}

/// How the `tariscope.*` system methods answer (issue 12: servers differ here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SystemFields {
    /// As the guide: `{"database": "4.6.118"}`; the summary uses the same names.
    #[default]
    Documented,
    /// .NET-style names in the single methods and the summary: `{"DatabaseVersion": ...}`,
    /// `{"BuildDate": "2024-03-15T00:00:00"}`, `ProductVersion`, `SerialNumber`, `EditionName`.
    DotNet,
    /// The single methods answer a bare value (`"4.6.118"` in JSON).
    Bare,
    /// The single methods answer a plain-text body (`text/plain`: `4.6.118`).
    Text,
}

/// Casing of response keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyCase {
    /// Exactly as the guide spells them (`House`, `accountId`, `start_debt`).
    #[default]
    Documented,
    /// Every key lower-cased.
    Lower,
    /// First letter of every key upper-cased.
    Pascal,
}

/// Format of dates in responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateStyle {
    /// `2023-05-17`
    #[default]
    Iso,
    /// `2023-05-17T00:00:00`
    DotNet,
}

/// Shape of list responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Envelope {
    /// A bare array.
    #[default]
    Bare,
    /// `{"count": N, "items": [...]}`
    Wrapped,
}

/// An API user. `rights: None` = every method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub rights: Option<Vec<String>>,
}

impl SimUser {
    /// The default user: `demo` / `demo` with every right.
    pub fn demo() -> Self {
        Self {
            username: "demo".to_owned(),
            password: "demo".to_owned(),
            rights: None,
        }
    }

    /// A user allowed only the listed methods.
    pub fn with_rights(username: &str, password: &str, rights: &[&str]) -> Self {
        Self {
            username: username.to_owned(),
            password: password.to_owned(),
            rights: Some(rights.iter().map(|r| (*r).to_owned()).collect()),
        }
    }

    /// Whether the user may call `method`.
    pub fn may(&self, method: &str) -> bool {
        match &self.rights {
            None => true,
            Some(list) => list.iter().any(|r| r.eq_ignore_ascii_case(method)),
        }
    }
}

/// Faults applied to a request. JSON form (control API, `--faults` file): the same field
/// names, with `latency_ms` and `latency_jitter_ms` (aliases `latency`, `latency_jitter`)
/// in milliseconds; every field optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fault {
    #[serde(rename = "latency_ms", alias = "latency", with = "millis")]
    pub latency: Duration,
    #[serde(
        rename = "latency_jitter_ms",
        alias = "latency_jitter",
        with = "millis"
    )]
    pub latency_jitter: Duration,
    /// Probability (0..1) of answering `error_status` without processing.
    pub error_rate: f64,
    /// 500 or 503 (default 503).
    pub error_status: u16,
    /// Probability of answering 429 with `Retry-After: retry_after_secs`.
    pub rate_limit_rate: f64,
    pub retry_after_secs: u64,
    /// Probability of closing the connection without processing the request.
    pub drop_before_rate: f64,
    /// Probability of processing the request (a write is committed), then closing the
    /// connection without an answer.
    pub drop_after_commit_rate: f64,
    /// When above 0, the fault applies only to every n-th request of the method (counted
    /// like `/_sim/stats`, from the last counter reset): with rates of 1 a deterministic
    /// fault, e.g. `every_nth = 5` drops exactly one request in five.
    pub every_nth: u64,
}

impl Default for Fault {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            error_rate: 0.0,
            error_status: 503,
            rate_limit_rate: 0.0,
            retry_after_secs: 1,
            drop_before_rate: 0.0,
            drop_after_commit_rate: 0.0,
            every_nth: 0,
        }
    }
}

impl Fault {
    /// Whether the fault applies to the `n`-th request of its method (1-based).
    pub fn applies_to(&self, n: u64) -> bool {
        self.every_nth == 0 || n.is_multiple_of(self.every_nth)
    }

    /// True when this fault changes nothing.
    pub fn is_off(&self) -> bool {
        self.latency.is_zero()
            && self.latency_jitter.is_zero()
            && self.error_rate <= 0.0
            && self.rate_limit_rate <= 0.0
            && self.drop_before_rate <= 0.0
            && self.drop_after_commit_rate <= 0.0
    }

    /// A fault that drops every request after processing it.
    pub fn drop_after_commit() -> Self {
        Self {
            drop_after_commit_rate: 1.0,
            ..Self::default()
        }
    }

    /// A fault that drops every request before processing it.
    pub fn drop_before() -> Self {
        Self {
            drop_before_rate: 1.0,
            ..Self::default()
        }
    }

    /// A fault that answers every request with `status` (500 or 503).
    pub fn error(status: u16) -> Self {
        Self {
            error_rate: 1.0,
            error_status: status,
            ..Self::default()
        }
    }

    /// A fault that answers every request with 429 and `Retry-After: secs`.
    pub fn rate_limited(secs: u64) -> Self {
        Self {
            rate_limit_rate: 1.0,
            retry_after_secs: secs,
            ..Self::default()
        }
    }
}

/// Faults for every method (`global`) and per API method name (`methods`). A method's
/// own entry replaces the global fault for that method.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    pub global: Fault,
    pub methods: BTreeMap<String, Fault>,
}

impl FaultPlan {
    /// The fault that applies to `method`.
    pub fn for_method(&self, method: &str) -> &Fault {
        self.methods.get(method).unwrap_or(&self.global)
    }

    /// True when no fault is set anywhere.
    pub fn is_off(&self) -> bool {
        self.global.is_off() && self.methods.values().all(Fault::is_off)
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_plan_json_uses_milliseconds_and_defaults() {
        let plan: FaultPlan = serde_json::from_str(
            r#"{"global": {"latency_ms": 20}, "methods": {"subscriber.create": {"drop_after_commit_rate": 1.0, "latency": 5}}}"#,
        )
        .unwrap();
        assert_eq!(plan.global.latency, Duration::from_millis(20));
        assert_eq!(plan.global.error_status, 503);
        let create = plan.for_method("subscriber.create");
        assert_eq!(create.latency, Duration::from_millis(5));
        assert!((create.drop_after_commit_rate - 1.0).abs() < f64::EPSILON);
        assert_eq!(plan.for_method("subscriber.get"), &plan.global);
        assert!(!plan.is_off());
        assert!(FaultPlan::default().is_off());
    }

    #[test]
    fn fault_plan_rejects_unknown_fields() {
        assert!(serde_json::from_str::<FaultPlan>(r#"{"global": {"bogus": 1}}"#).is_err());
    }

    #[test]
    fn rights_are_case_insensitive() {
        let u = SimUser::with_rights("a", "b", &["subscriber.get"]);
        assert!(u.may("Subscriber.Get"));
        assert!(!u.may("sql"));
        assert!(SimUser::demo().may("sql"));
    }
}

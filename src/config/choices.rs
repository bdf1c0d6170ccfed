//! The closed sets of words the configuration accepts, each parsed once into an enum.
//!
//! Owns: the spelling of every choice key's values (`api.format`, `push.conflict_policy`,
//! `push.natural_key`, `log.format`, `jobs.summaries.mode`) and the enums that only configuration defines
//! ([`NaturalKey`], [`LogFormat`]). Must not: fall back silently: a word not in a table is a
//! [`super::Problem`] reported by the schema, never a default picked later.

use crate::api::Format;
use crate::sync::SummariesMode;
use crate::sync::fields::Field;
use crate::sync::plan::ConflictPolicy;

/// `push.natural_key`: how a desired row finds an existing Tariscope subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NaturalKey {
    AccountNumber,
    ContractNumber,
    Email,
    Edrpou,
    PersonalCode,
    /// Never link by a field: rows without `tariscope_id` are created.
    None,
}

impl NaturalKey {
    /// The subscriber field compared, or `None` for [`NaturalKey::None`].
    pub fn field(self) -> Option<Field> {
        match self {
            NaturalKey::AccountNumber => Some(Field::AccountId),
            NaturalKey::ContractNumber => Some(Field::ContractId),
            NaturalKey::Email => Some(Field::Email),
            NaturalKey::Edrpou => Some(Field::Edrpou),
            NaturalKey::PersonalCode => Some(Field::PersonalCode),
            NaturalKey::None => None,
        }
    }
}

/// `log.format` and `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colour only on a terminal).
    Pretty,
    /// One JSON object per line (containers, log shippers).
    Json,
}

pub(super) const FORMATS: &[(&str, Format)] = &[("json", Format::Json), ("xml", Format::Xml)];

pub(super) const CONFLICT_POLICIES: &[(&str, ConflictPolicy)] = &[
    ("remote-wins", ConflictPolicy::RemoteWins),
    ("local-wins", ConflictPolicy::LocalWins),
    ("manual", ConflictPolicy::Manual),
];

pub(super) const NATURAL_KEYS: &[(&str, NaturalKey)] = &[
    ("account_number", NaturalKey::AccountNumber),
    ("contract_number", NaturalKey::ContractNumber),
    ("email", NaturalKey::Email),
    ("edrpou", NaturalKey::Edrpou),
    ("personal_code", NaturalKey::PersonalCode),
    ("none", NaturalKey::None),
];

pub(super) const LOG_FORMATS: &[(&str, LogFormat)] =
    &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)];

pub(super) const SUMMARIES_MODES: &[(&str, SummariesMode)] = &[
    ("active-days", SummariesMode::ActiveDays),
    ("every-day", SummariesMode::EveryDay),
];

//! Reference and system methods: `tariffs.*`, `services.list`, the six `tariscope.*`
//! methods and `claims`.
//!
//! Owns: their parameter rules and response shapes. Must not: render, check auth or
//! apply faults.

use crate::sim::config::{SimUser, SystemFields};
use crate::sim::dataset::Dataset;
use crate::sim::error::ApiError;
use crate::sim::params::Params;
use crate::sim::routes::METHODS;
use crate::sim::value::Val;

/// What the `tariscope.*` methods report.
pub const VERSION: &str = "4.6.4.1521";
pub const DATABASE: &str = "4.6.118";
pub const BUILD: &str = "2024-03-15";
pub const SERIAL: &str = "TS46-PRV-0042-7731";
pub const EDITION: &str = "Provider";

/// `tariffs.plans`: active plans.
pub fn plans(ds: &Dataset) -> Val<'_> {
    Val::List(
        ds.plans
            .iter()
            .filter(|p| p.active)
            .map(|p| {
                Val::Obj(vec![
                    ("id", Val::Int(p.id)),
                    ("name", Val::str(&p.name)),
                    ("description", Val::str(&p.description)),
                    ("currencyid", Val::Int(p.currencyid)),
                    ("active", Val::Bool(p.active)),
                ])
            })
            .collect(),
    )
}

/// `tariffs.details`: filters `providerid`, `planid`, `rateid` (0/absent = all) and
/// `direction` (`in`/`out`/`all`).
pub fn details<'a>(ds: &'a Dataset, p: &Params) -> Result<Val<'a>, ApiError> {
    let provider = p.int("providerid")?.unwrap_or(0);
    let plan = p.int("planid")?.unwrap_or(0);
    let rate = p.int("rateid")?.unwrap_or(0);
    let direction = p.text("direction").unwrap_or("all").to_ascii_lowercase();
    if !matches!(direction.as_str(), "in" | "out" | "all") {
        return Err(ApiError::invalid(format!(
            "parameter direction must be in, out or all, got {direction:?}"
        )));
    }
    Ok(Val::List(
        ds.tariffs
            .iter()
            .filter(|t| provider == 0 || t.providerid == provider)
            .filter(|t| plan == 0 || t.planid == plan)
            .filter(|t| rate == 0 || t.id == rate)
            .filter(|t| direction == "all" || t.direction == direction)
            .map(|t| {
                Val::Obj(vec![
                    ("id", Val::Int(t.id)),
                    ("name", Val::str(&t.name)),
                    ("providerid", Val::Int(t.providerid)),
                    ("parametersid", Val::Int(t.parametersid)),
                    ("planid", Val::Int(t.planid)),
                    ("activedate", Val::Date(t.activedate)),
                    ("currencyid", Val::Int(t.currencyid)),
                    ("value", Val::Dec(t.value)),
                    ("roundto", Val::Int(t.roundto)),
                    ("freeseconds", Val::Int(t.freeseconds)),
                    ("substractseconds", Val::Int(t.substractseconds)),
                    ("roundcostto", Val::Int(t.roundcostto)),
                    ("rounddurationdown", Val::Bool(t.rounddurationdown)),
                    ("roundcostdown", Val::Bool(t.roundcostdown)),
                    ("roundfirstminute", Val::Bool(t.roundfirstminute)),
                    ("noaccount", Val::Bool(t.noaccount)),
                    ("accountdescription", Val::str(&t.accountdescription)),
                    ("accountdns", Val::Bool(t.accountdns)),
                    ("minimumduration", Val::Int(t.minimumduration)),
                    ("stages", Val::Int(t.stages)),
                    ("minimumcost", Val::Dec(t.minimumcost)),
                    ("direction", Val::str(&t.direction)),
                ])
            })
            .collect(),
    ))
}

/// `tariffs.time`: the time-of-day bands of one tariff (`[]` for an unknown tariff).
pub fn time<'a>(ds: &'a Dataset, p: &Params) -> Result<Val<'a>, ApiError> {
    let rate = p.required_int("rateid")?;
    Ok(Val::List(
        ds.tariff_times
            .iter()
            .filter(|t| t.rateid == rate)
            .map(|t| {
                Val::Obj(vec![
                    ("rateid", Val::Int(t.rateid)),
                    ("fromhour", Val::Int(t.fromhour)),
                    ("tohour", Val::Int(t.tohour)),
                    ("value", Val::Dec(t.value)),
                ])
            })
            .collect(),
    ))
}

/// `services.list`.
pub fn services(ds: &Dataset) -> Val<'_> {
    Val::List(
        ds.services
            .iter()
            .map(|s| {
                Val::Obj(vec![
                    ("id", Val::Int(s.id)),
                    ("name", Val::str(&s.name)),
                    ("price", Val::Dec(s.price)),
                    ("unit", Val::str(&s.unit)),
                ])
            })
            .collect(),
    )
}

/// The five single values, by the name the guide gives them.
const SYSTEM: [(&str, &str); 5] = [
    ("version", VERSION),
    ("database", DATABASE),
    ("build", BUILD),
    ("serial", SERIAL),
    ("edition", EDITION),
];

/// The name of a system value on the wire in this variant.
fn system_name(field: &'static str, style: SystemFields) -> &'static str {
    match (style, field) {
        (SystemFields::DotNet, "version") => "ProductVersion",
        (SystemFields::DotNet, "database") => "DatabaseVersion",
        (SystemFields::DotNet, "build") => "BuildDate",
        (SystemFields::DotNet, "serial") => "SerialNumber",
        (SystemFields::DotNet, "edition") => "EditionName",
        _ => field,
    }
}

/// A system value: the build date as a date (a .NET date-time in the .NET variant).
fn system_value(field: &str, value: &'static str, style: SystemFields) -> Val<'static> {
    match (field, chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")) {
        ("build", Ok(_)) if style == SystemFields::DotNet => {
            Val::owned(format!("{value}T00:00:00"))
        }
        ("build", Ok(d)) => Val::Date(d),
        _ => Val::str(value),
    }
}

/// The value a single `tariscope.<field>` method answers, if `method` is one.
fn single(method: &str) -> Option<(&'static str, &'static str)> {
    let field = method.strip_prefix("tariscope.")?;
    SYSTEM.iter().copied().find(|(f, _)| *f == field)
}

/// The plain-text body of a single system method in the `text` variant (`None`: not one, or
/// another variant).
pub fn system_text(method: &str, style: SystemFields) -> Option<String> {
    if style != SystemFields::Text {
        return None;
    }
    single(method).map(|(_, value)| value.to_owned())
}

/// One of the six `tariscope.*` methods.
pub fn system<'a>(ds: &'a Dataset, method: &str, style: SystemFields) -> Val<'a> {
    if let Some((field, value)) = single(method) {
        let v = system_value(field, value, style);
        return match style {
            SystemFields::Bare | SystemFields::Text => v,
            _ => Val::Obj(vec![(system_name(field, style), v)]),
        };
    }
    let mut fields: Vec<(&'static str, Val<'a>)> = SYSTEM
        .iter()
        .map(|(f, value)| (system_name(f, style), system_value(f, value, style)))
        .collect();
    fields.push((
        "subscribers",
        Val::Int(i64::try_from(ds.subscribers.len()).unwrap_or(i64::MAX)),
    ));
    fields.push((
        "nodes",
        Val::Int(i64::try_from(ds.nodes.len()).unwrap_or(i64::MAX)),
    ));
    Val::Obj(fields)
}

/// `claims`: the methods the caller may use (`api.auth` is open to everyone, not listed).
pub fn claims(user: &SimUser) -> Val<'static> {
    Val::List(
        METHODS
            .iter()
            .skip(1)
            .filter(|(name, _)| user.may(name))
            .map(|(name, _)| Val::str(name))
            .collect(),
    )
}

//! [`ApiProfile`]: per API method, the HTTP verb, path, body encoding, request field
//! names and idempotency. `ApiProfile::default()` is the reference wire profile
//! (`docs/wire-profile.md` §5); every entry can be overridden from config.
//!
//! Owns: the table of how each method is *sent*. Must not: decode responses (`wire.rs`)
//! or do I/O.
//!
//! Request parameters are named in the client by a *logical key*: the documented name in
//! lower case (`subscriberid`, `dn`, `fromdate`, `house`, `accountid`, ...). `fields`
//! maps a logical key to the name put on the wire; keys without an entry are sent as is.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// HTTP verb of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verb {
    #[serde(alias = "get")]
    Get,
    #[serde(alias = "post")]
    Post,
    #[serde(alias = "put")]
    Put,
    #[serde(alias = "patch")]
    Patch,
}

impl Verb {
    pub fn as_http(self) -> reqwest::Method {
        match self {
            Self::Get => reqwest::Method::GET,
            Self::Post => reqwest::Method::POST,
            Self::Put => reqwest::Method::PUT,
            Self::Patch => reqwest::Method::PATCH,
        }
    }
}

/// Where a method's parameters travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// A JSON object body (`Content-Type: application/json`).
    Json,
    /// An `application/x-www-form-urlencoded` body.
    Form,
    /// The URL query string (no body).
    Query,
}

/// How one method is sent (fully resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodProfile {
    pub verb: Verb,
    /// Path from the server root, e.g. `/api/subscriber/get/`. XML inserts `/xml` after it.
    pub path: String,
    pub encoding: Encoding,
    /// Logical key -> wire name.
    pub fields: BTreeMap<String, String>,
    /// May the call be resent after its request may have reached the server?
    pub idempotent: bool,
}

impl MethodProfile {
    /// The wire name of a logical parameter key.
    pub fn wire_name<'a>(&'a self, key: &'a str) -> &'a str {
        self.fields.get(key).map(String::as_str).unwrap_or(key)
    }
}

/// A config override of one method: every field optional, merged onto the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MethodOverride {
    verb: Option<Verb>,
    path: Option<String>,
    encoding: Option<Encoding>,
    fields: BTreeMap<String, String>,
    idempotent: Option<bool>,
}

/// The wire profile of the whole API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiProfile {
    /// Every method, keyed by its API name (`subscriber.get`, `accounts.summary`, ...).
    /// In config, entries are merged onto the reference profile.
    #[serde(deserialize_with = "merge_methods")]
    pub methods: BTreeMap<String, MethodProfile>,
    /// The server's `subscriber.list.*` carry only id and name: callers must
    /// `subscriber_get` each subscriber for the full record.
    pub lists_are_partial: bool,
    /// The field of a subscriber record that lists its numbers, for a server that does not
    /// call it `dns` (case-insensitive). Whether records list numbers at all is not
    /// configured: the daemon sees it (`doctor` says what it found).
    pub dns_field: Option<String>,
}

impl Default for ApiProfile {
    fn default() -> Self {
        Self {
            methods: reference_methods(),
            lists_are_partial: false,
            dns_field: None,
        }
    }
}

impl ApiProfile {
    /// The profile of `method`. Every method the client calls is in the table (the
    /// reference profile is complete and overrides only change entries).
    pub fn method(&self, method: &str) -> Option<&MethodProfile> {
        self.methods.get(method)
    }
}

fn merge_methods<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<BTreeMap<String, MethodProfile>, D::Error> {
    let overrides = BTreeMap::<String, MethodOverride>::deserialize(de)?;
    let mut methods = reference_methods();
    for (name, o) in overrides {
        let Some(m) = methods.get_mut(&name) else {
            let known: Vec<&str> = reference_methods_names();
            return Err(serde::de::Error::custom(format!(
                "unknown API method {name:?} in api.profile.methods; known: {}",
                known.join(", ")
            )));
        };
        if let Some(v) = o.verb {
            m.verb = v;
        }
        if let Some(p) = o.path {
            m.path = p;
        }
        if let Some(e) = o.encoding {
            m.encoding = e;
        }
        if let Some(i) = o.idempotent {
            m.idempotent = i;
        }
        for (k, v) in o.fields {
            m.fields.insert(k.to_ascii_lowercase(), v);
        }
    }
    Ok(methods)
}

/// (name, verb, path, encoding, idempotent, field renames)
type Row = (
    &'static str,
    Verb,
    &'static str,
    Encoding,
    bool,
    &'static [(&'static str, &'static str)],
);

const REFERENCE: &[Row] = {
    use Encoding::{Json, Query};
    use Verb::{Get, Post};
    &[
        ("api.auth", Post, "/api/auth", Json, true, &[]),
        (
            "subscriber.get",
            Get,
            "/api/subscriber/get/",
            Query,
            true,
            &[],
        ),
        (
            "subscriber.list.department",
            Get,
            "/api/subscriber/list/department/",
            Query,
            true,
            &[],
        ),
        (
            "subscriber.list.node",
            Get,
            "/api/subscriber/list/node/",
            Query,
            true,
            &[],
        ),
        (
            "subscriber.update",
            Post,
            "/api/subscriber/update/",
            Json,
            true,
            &[
                ("house", "House"),
                ("flat", "Flat"),
                ("accountid", "accountId"),
            ],
        ),
        (
            "subscriber.create",
            Post,
            "/api/subscriber/create/",
            Json,
            false,
            &[],
        ),
        (
            "subscriber.dnadd",
            Post,
            "/api/subscriber/dnadd/",
            Json,
            false,
            &[("subscriberid", "SubscriberId"), ("dn", "DN")],
        ),
        (
            "accounts.summary",
            Get,
            "/api/accounts.summary/",
            Query,
            true,
            &[],
        ),
        (
            "accounts.charges",
            Get,
            "/api/accounts/charges/",
            Query,
            true,
            &[],
        ),
        (
            "accounts.payment",
            Post,
            "/api/accounts/payment/",
            Json,
            false,
            &[],
        ),
        (
            "accounts.payments",
            Get,
            "/api/accounts/payments/",
            Query,
            true,
            &[],
        ),
        (
            "tariffs.plans",
            Get,
            "/api/tariffs/plans/",
            Query,
            true,
            &[],
        ),
        (
            "tariffs.details",
            Get,
            "/api/tariffs/details/",
            Query,
            true,
            &[],
        ),
        ("tariffs.time", Get, "/api/tariffs/time/", Query, true, &[]),
        (
            "services.list",
            Get,
            "/api/services/list/",
            Query,
            true,
            &[],
        ),
        (
            "tariscope.version",
            Get,
            "/api/tariscope/version/",
            Query,
            true,
            &[],
        ),
        (
            "tariscope.database",
            Get,
            "/api/tariscope/database/",
            Query,
            true,
            &[],
        ),
        (
            "tariscope.build",
            Get,
            "/api/tariscope/build/",
            Query,
            true,
            &[],
        ),
        (
            "tariscope.serial",
            Get,
            "/api/tariscope/serial/",
            Query,
            true,
            &[],
        ),
        (
            "tariscope.edition",
            Get,
            "/api/tariscope/edition/",
            Query,
            true,
            &[],
        ),
        (
            "tariscope.summary",
            Get,
            "/api/tariscope/summary/",
            Query,
            true,
            &[],
        ),
        ("claims", Get, "/api/claims/", Query, true, &[]),
        ("sql", Post, "/api/sql/", Json, false, &[]),
    ]
};

fn reference_methods_names() -> Vec<&'static str> {
    REFERENCE.iter().map(|r| r.0).collect()
}

fn reference_methods() -> BTreeMap<String, MethodProfile> {
    REFERENCE
        .iter()
        .map(|&(name, verb, path, encoding, idempotent, renames)| {
            let fields = renames
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let m = MethodProfile {
                verb,
                path: path.to_owned(),
                encoding,
                fields,
                idempotent,
            };
            (name.to_owned(), m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_profile_matches_the_wire_profile() {
        let p = ApiProfile::default();
        assert_eq!(p.methods.len(), 23);
        let cases = [
            ("api.auth", Verb::Post, "/api/auth", Encoding::Json, true),
            (
                "subscriber.get",
                Verb::Get,
                "/api/subscriber/get/",
                Encoding::Query,
                true,
            ),
            (
                "accounts.summary",
                Verb::Get,
                "/api/accounts.summary/",
                Encoding::Query,
                true,
            ),
            (
                "subscriber.create",
                Verb::Post,
                "/api/subscriber/create/",
                Encoding::Json,
                false,
            ),
            (
                "subscriber.dnadd",
                Verb::Post,
                "/api/subscriber/dnadd/",
                Encoding::Json,
                false,
            ),
            (
                "accounts.payment",
                Verb::Post,
                "/api/accounts/payment/",
                Encoding::Json,
                false,
            ),
            (
                "subscriber.update",
                Verb::Post,
                "/api/subscriber/update/",
                Encoding::Json,
                true,
            ),
            ("sql", Verb::Post, "/api/sql/", Encoding::Json, false),
            ("claims", Verb::Get, "/api/claims/", Encoding::Query, true),
        ];
        for (name, verb, path, enc, idem) in cases {
            let m = p.method(name).unwrap();
            assert_eq!(
                (m.verb, m.path.as_str(), m.encoding, m.idempotent),
                (verb, path, enc, idem),
                "{name}"
            );
        }
        let dnadd = p.method("subscriber.dnadd").unwrap();
        assert_eq!(dnadd.wire_name("subscriberid"), "SubscriberId");
        assert_eq!(dnadd.wire_name("dn"), "DN");
        assert_eq!(dnadd.wire_name("pbxid"), "pbxid");
        let upd = p.method("subscriber.update").unwrap();
        assert_eq!(upd.wire_name("accountid"), "accountId");
        assert!(!p.lists_are_partial);
    }

    #[test]
    fn overrides_merge_onto_the_reference() {
        let json = r#"{"methods": {
            "accounts.summary": {"path": "/api/accounts/summary/"},
            "subscriber.update": {"idempotent": false, "encoding": "form", "fields": {"House": "house"}},
            "subscriber.create": {"verb": "PUT"}
        }, "lists_are_partial": true}"#;
        let p: ApiProfile = serde_json::from_str(json).unwrap();
        let s = p.method("accounts.summary").unwrap();
        assert_eq!(s.path, "/api/accounts/summary/");
        assert_eq!(s.verb, Verb::Get);
        let u = p.method("subscriber.update").unwrap();
        assert!(!u.idempotent);
        assert_eq!(u.encoding, Encoding::Form);
        assert_eq!(u.wire_name("house"), "house");
        assert_eq!(u.wire_name("flat"), "Flat");
        assert_eq!(p.method("subscriber.create").unwrap().verb, Verb::Put);
        assert!(p.lists_are_partial);
        assert_eq!(p.methods.len(), 23);
        let empty: ApiProfile = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, ApiProfile::default());
    }

    #[test]
    fn unknown_keys_and_methods_are_rejected() {
        let bad = [
            r#"{"method": {}}"#,
            r#"{"methods": {"subscriber.delete": {"path": "/x"}}}"#,
            r#"{"methods": {"subscriber.get": {"pth": "/x"}}}"#,
            r#"{"methods": {"subscriber.get": {"encoding": "xml"}}}"#,
        ];
        for b in bad {
            assert!(serde_json::from_str::<ApiProfile>(b).is_err(), "{b}");
        }
        let err = serde_json::from_str::<ApiProfile>(bad[1])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("subscriber.delete") && err.contains("accounts.summary"),
            "{err}"
        );
    }
}

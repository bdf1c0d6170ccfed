//! The method table and path parsing: which API method a path names, its HTTP verb, and
//! whether XML was asked for.
//!
//! Owns: the list of API method names (also the index of the request counters), path
//! forms (slashed, dotted, `account.summary`, with or without trailing slash, `/xml`).
//! Must not: run handlers or check auth.

/// HTTP verb of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }
}

/// Every API method: (name, verb). The index is the method's counter slot.
pub const METHODS: &[(&str, Verb)] = &[
    ("api.auth", Verb::Post),
    ("subscriber.get", Verb::Get),
    ("subscriber.list.department", Verb::Get),
    ("subscriber.list.node", Verb::Get),
    ("subscriber.update", Verb::Post),
    ("subscriber.create", Verb::Post),
    ("subscriber.dnadd", Verb::Post),
    ("accounts.summary", Verb::Get),
    ("accounts.charges", Verb::Get),
    ("accounts.payment", Verb::Post),
    ("accounts.payments", Verb::Get),
    ("tariffs.plans", Verb::Get),
    ("tariffs.details", Verb::Get),
    ("tariffs.time", Verb::Get),
    ("services.list", Verb::Get),
    ("tariscope.version", Verb::Get),
    ("tariscope.database", Verb::Get),
    ("tariscope.build", Verb::Get),
    ("tariscope.serial", Verb::Get),
    ("tariscope.edition", Verb::Get),
    ("tariscope.summary", Verb::Get),
    ("claims", Verb::Get),
    ("sql", Verb::Post),
];

/// A routed API path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Index into `METHODS`.
    pub index: usize,
    pub xml: bool,
}

impl Route {
    pub fn name(self) -> &'static str {
        METHODS[self.index].0
    }

    pub fn verb(self) -> Verb {
        METHODS[self.index].1
    }
}

/// The counter slot of a method name.
pub fn method_index(name: &str) -> Option<usize> {
    METHODS.iter().position(|(n, _)| *n == name)
}

/// Route an `/api/...` path; `None` for anything that is not an API method.
pub fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/api/")?;
    let rest = rest.trim_end_matches('/');
    let (rest, xml) = match rest.strip_suffix("/xml") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    // Fast path for the hot method.
    let name = match rest {
        "subscriber/get" => return Some(Route { index: 1, xml }),
        "auth" => "api.auth",
        "accounts.summary" | "account.summary" | "accounts/summary" | "account/summary" => {
            "accounts.summary"
        }
        other => {
            if other.is_empty() || other.contains("//") {
                return None;
            }
            let dotted = other.replace('/', ".");
            let index = method_index(&dotted)?;
            return (index != 0).then_some(Route { index, xml });
        }
    };
    method_index(name).map(|index| Route { index, xml })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_table() {
        let cases: &[(&str, Option<(&str, bool)>)] = &[
            ("/api/auth", Some(("api.auth", false))),
            ("/api/auth/", Some(("api.auth", false))),
            ("/api/auth/xml", Some(("api.auth", true))),
            ("/api/subscriber/get/", Some(("subscriber.get", false))),
            ("/api/subscriber/get", Some(("subscriber.get", false))),
            ("/api/subscriber/get/xml/", Some(("subscriber.get", true))),
            ("/api/accounts.summary/", Some(("accounts.summary", false))),
            ("/api/accounts/summary", Some(("accounts.summary", false))),
            ("/api/account.summary/xml", Some(("accounts.summary", true))),
            (
                "/api/subscriber/list/department/",
                Some(("subscriber.list.department", false)),
            ),
            (
                "/api/tariscope/version/xml/",
                Some(("tariscope.version", true)),
            ),
            ("/api/claims", Some(("claims", false))),
            ("/api/sql/", Some(("sql", false))),
            ("/api/api/auth", None),
            ("/api/subscriber/gett/", None),
            ("/api//", None),
            ("/other", None),
        ];
        for (path, want) in cases {
            let got = route(path).map(|r| (r.name(), r.xml));
            assert_eq!(got, *want, "{path}");
        }
    }

    #[test]
    fn every_method_routes_from_its_slashed_path() {
        for (i, (name, _)) in METHODS.iter().enumerate().skip(1) {
            let path = format!("/api/{}/", name.replace('.', "/"));
            assert_eq!(route(&path).map(|r| r.index), Some(i), "{path}");
        }
    }
}

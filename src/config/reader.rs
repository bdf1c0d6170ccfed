//! A reader over the merged configuration tree that collects **every** problem.
//!
//! Owns: looking a key up by its dotted path, converting it to the expected type (accepting
//! the strings that environment variables produce), remembering which keys exist (with their
//! defaults, and which are required) so unknown keys can be reported and the example config
//! checked, and collecting problems instead of stopping at the first.
//! Must not: know what any particular key means (that is `config::schema`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

/// One thing wrong with the configuration, named by its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `jobs.payments.schedule`.
    pub path: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Reads typed values out of a JSON-like tree and collects problems.
pub struct Reader<'a> {
    root: &'a Value,
    /// Every leaf key the schema asked for (present or not): the documented key set.
    known: BTreeSet<String>,
    /// Keys whose whole subtree is read by someone else (e.g. `api.profile`).
    opaque: BTreeSet<String>,
    /// The default of each key that has one, as it would be written in TOML.
    defaults: BTreeMap<String, Value>,
    /// Keys without a default that must be set (some as one of a group).
    required: BTreeSet<String>,
    problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    pub fn new(root: &'a Value) -> Self {
        Self {
            root,
            known: BTreeSet::new(),
            opaque: BTreeSet::new(),
            defaults: BTreeMap::new(),
            required: BTreeSet::new(),
            problems: Vec::new(),
        }
    }

    /// Marks `path` as required (it has no default).
    pub fn require(&mut self, path: &str) {
        self.required.insert(path.to_string());
    }

    /// Records that a required value is missing: `what` says what to set.
    pub fn missing(&mut self, path: &str, what: &str) {
        self.problem(path, format!("required (no default): {what}"));
    }

    fn default_is(&mut self, path: &str, value: Value) {
        self.defaults.insert(path.to_string(), value);
    }

    /// Records a problem found by a caller's own validation.
    pub fn problem(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// The raw value at `path`, if present (and not null). Marks the key as known.
    pub fn raw(&mut self, path: &str) -> Option<&'a Value> {
        self.known.insert(path.to_string());
        let mut cur = self.root;
        for part in path.split('.') {
            cur = cur.as_object()?.get(part)?;
        }
        (!cur.is_null()).then_some(cur)
    }

    /// A subtree handed whole to another parser; its inner keys are not checked here.
    pub fn opaque(&mut self, path: &str) -> Option<&'a Value> {
        self.opaque.insert(path.to_string());
        self.raw(path)
    }

    pub fn string(&mut self, path: &str, default: &str) -> String {
        self.default_is(path, Value::String(default.to_string()));
        self.opt_string(path).unwrap_or_else(|| default.to_string())
    }

    /// A string with a default when absent; set empty, it is off (`None`).
    pub fn string_or_off(&mut self, path: &str, default: &str) -> Option<String> {
        self.default_is(path, Value::String(default.to_string()));
        match self.raw(path) {
            None => Some(default.to_string()),
            Some(_) => self.opt_string(path),
        }
    }

    /// A required string (empty counts as missing): `what` says what it is.
    pub fn required_string(&mut self, path: &str, what: &str) -> String {
        self.require(path);
        let value = self.opt_string(path);
        if value.is_none() {
            self.missing(path, what);
        }
        value.unwrap_or_default()
    }

    /// A string; absent or empty means `None`.
    pub fn opt_string(&mut self, path: &str) -> Option<String> {
        match self.raw(path)? {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.problem(path, format!("expected a string, found {}", kind(other)));
                None
            }
        }
    }

    pub fn bool(&mut self, path: &str, default: bool) -> bool {
        self.default_is(path, Value::Bool(default));
        match self.raw(path) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    self.problem(path, format!("expected true or false, found {s:?}"));
                    default
                }
            },
            Some(other) => {
                self.problem(
                    path,
                    format!("expected true or false, found {}", kind(other)),
                );
                default
            }
        }
    }

    /// An unsigned integer within `min..=max`.
    pub fn u64_in(&mut self, path: &str, default: u64, min: u64, max: u64) -> u64 {
        self.default_is(path, Value::from(default));
        let value = match self.raw(path) {
            None => return default,
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(_) => None,
        };
        match value {
            Some(v) if (min..=max).contains(&v) => v,
            _ => {
                let found = self.raw(path).map(show).unwrap_or_default();
                self.problem(
                    path,
                    format!("expected a whole number from {min} to {max}, found {found}"),
                );
                default
            }
        }
    }

    /// A finite number of at least 0 (rates; 0 means "no limit" where the key says so).
    pub fn non_negative_f64(&mut self, path: &str, default: f64) -> f64 {
        self.default_is(path, Value::from(default));
        let value = match self.raw(path) {
            None => return default,
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            Some(_) => None,
        };
        match value {
            Some(v) if v.is_finite() && v >= 0.0 => v,
            _ => {
                let found = self.raw(path).map(show).unwrap_or_default();
                self.problem(
                    path,
                    format!("expected a number of 0 or more, found {found}"),
                );
                default
            }
        }
    }

    /// One of a fixed set of words, as the value the table pairs it with.
    pub fn choice<T: Copy + PartialEq>(
        &mut self,
        path: &str,
        default: T,
        table: &[(&str, T)],
    ) -> T {
        if let Some((word, _)) = table.iter().find(|(_, v)| *v == default) {
            self.default_is(path, Value::String(word.to_string()));
        }
        let Some(word) = self.opt_string(path) else {
            return default;
        };
        match table.iter().find(|(w, _)| *w == word) {
            Some((_, value)) => *value,
            None => {
                let words: Vec<&str> = table.iter().map(|(w, _)| *w).collect();
                self.problem(path, format!("{word:?} is not one of {}", words.join(", ")));
                default
            }
        }
    }

    /// A list of ids: a TOML array, or a comma-separated string (from the environment).
    pub fn id_list(&mut self, path: &str) -> Vec<i64> {
        let items: Vec<Value> = match self.raw(path) {
            None => return Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| Value::String(p.to_string()))
                .collect(),
            Some(Value::Number(n)) => vec![Value::Number(n.clone())],
            Some(other) => {
                self.problem(
                    path,
                    format!("expected a list of ids, found {}", kind(other)),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in &items {
            let id = match item {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse::<i64>().ok(),
                _ => None,
            };
            match id {
                Some(id) if id >= 0 => out.push(id),
                _ => self.problem(path, format!("{} is not a valid id", show(item))),
            }
        }
        out
    }

    /// Every leaf key the schema asked for.
    pub fn known_keys(&self) -> &BTreeSet<String> {
        &self.known
    }

    /// The default of every key that has one.
    pub fn defaults(&self) -> &BTreeMap<String, Value> {
        &self.defaults
    }

    /// The keys without a default that must be set.
    pub fn required_keys(&self) -> &BTreeSet<String> {
        &self.required
    }

    /// Reports keys present in the tree that the schema never asked for, then returns all
    /// problems.
    pub fn finish(mut self) -> Vec<Problem> {
        let mut unknown = Vec::new();
        self.collect_unknown(self.root, String::new(), &mut unknown);
        for path in unknown {
            self.problem(
                &path,
                "unknown key (check the spelling against config/tariscope-sync.example.toml)",
            );
        }
        self.problems
    }

    fn collect_unknown(&self, value: &Value, prefix: String, out: &mut Vec<String>) {
        if self.opaque.contains(&prefix) || self.known.contains(&prefix) {
            return;
        }
        match value.as_object() {
            Some(map) => {
                for (key, child) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    self.collect_unknown(child, path, out);
                }
            }
            None if !prefix.is_empty() => out.push(prefix),
            None => {}
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collects_every_problem_and_unknown_keys() {
        let tree = json!({"a": {"n": "x", "b": true, "extra": 1}, "zzz": {"q": 1}});
        let mut r = Reader::new(&tree);
        assert_eq!(r.u64_in("a.n", 5, 1, 10), 5);
        assert!(r.bool("a.b", false));
        assert_eq!(r.u64_in("a.missing", 7, 1, 10), 7);
        let problems = r.finish();
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["a.n", "a.extra", "zzz.q"]);
    }

    #[test]
    fn accepts_environment_strings() {
        let tree = json!({"n": "42", "b": "false", "ids": "1, 2,3", "r": "2.5"});
        let mut r = Reader::new(&tree);
        assert_eq!(r.u64_in("n", 0, 0, 100), 42);
        assert!(!r.bool("b", true));
        assert_eq!(r.id_list("ids"), vec![1, 2, 3]);
        assert_eq!(r.non_negative_f64("r", 1.0), 2.5);
        assert!(r.finish().is_empty());
    }

    #[test]
    fn rejects_out_of_range_and_bad_choices() {
        let tree = json!({"n": 0, "c": "yaml", "ids": ["x"]});
        let mut r = Reader::new(&tree);
        r.u64_in("n", 1, 1, 10);
        assert_eq!(r.choice("c", 1, &[("json", 1), ("xml", 2)]), 1);
        r.id_list("ids");
        let problems = r.finish();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[1]
                .message
                .contains("\"yaml\" is not one of json, xml")
        );
    }
}

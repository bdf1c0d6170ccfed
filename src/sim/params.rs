//! Request parameters from the query string and the body (JSON object or form), matched
//! case-insensitively as .NET model binding does.
//!
//! Owns: `Params` and typed getters that produce `invalid_parameter` errors naming the
//! parameter. Must not: know methods or the dataset.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::data::parse_date;
use super::error::ApiError;

/// One parameter value: JSON `null` is kept apart from absence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PVal {
    Null,
    Text(String),
}

/// Parameters, names lower-cased; later sources (the body) override earlier ones (query).
#[derive(Debug, Clone, Default)]
pub struct Params {
    items: Vec<(String, PVal)>,
}

impl Params {
    /// Parse the query string.
    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let mut p = Self::default();
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q)
                .map_err(|e| ApiError::invalid(format!("malformed query string: {e}")))?;
            for (k, v) in pairs {
                p.set(&k, PVal::Text(v));
            }
        }
        Ok(p)
    }

    /// Add the body: JSON object when it looks like one (or the content type says so),
    /// else form fields.
    pub fn add_body(&mut self, content_type: Option<&str>, body: &[u8]) -> Result<(), ApiError> {
        let text =
            std::str::from_utf8(body).map_err(|_| ApiError::invalid("the body is not UTF-8"))?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Ok(());
        }
        let is_json = content_type.is_some_and(|c| c.contains("json"))
            || trimmed.starts_with('{')
            || trimmed.starts_with('[');
        if is_json {
            let value: serde_json::Value = serde_json::from_str(trimmed)
                .map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}")))?;
            let serde_json::Value::Object(map) = value else {
                return Err(ApiError::invalid("the JSON body must be an object"));
            };
            for (k, v) in map {
                let pv = match v {
                    serde_json::Value::Null => PVal::Null,
                    serde_json::Value::String(s) => PVal::Text(s),
                    other => PVal::Text(other.to_string()),
                };
                self.set(&k, pv);
            }
        } else {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(trimmed)
                .map_err(|e| ApiError::invalid(format!("malformed form body: {e}")))?;
            for (k, v) in pairs {
                self.set(&k, PVal::Text(v));
            }
        }
        Ok(())
    }

    fn set(&mut self, name: &str, v: PVal) {
        let name = name.to_ascii_lowercase();
        match self.items.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = v,
            None => self.items.push((name, v)),
        }
    }

    /// Every parameter (lower-cased name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PVal)> {
        self.items.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The raw value (`name` lower case).
    pub fn raw(&self, name: &str) -> Option<&PVal> {
        self.items.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// A non-empty text value; null and "" count as absent.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.raw(name) {
            Some(PVal::Text(t)) if !t.trim().is_empty() => Some(t.trim()),
            _ => None,
        }
    }

    pub fn required_text(&self, name: &str) -> Result<&str, ApiError> {
        self.text(name)
            .ok_or_else(|| ApiError::invalid(format!("parameter {name} is required")))
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.text(name)
            .map(|t| {
                t.parse::<i64>().map_err(|_| {
                    ApiError::invalid(format!("parameter {name} must be an integer, got {t:?}"))
                })
            })
            .transpose()
    }

    pub fn required_int(&self, name: &str) -> Result<i64, ApiError> {
        self.int(name)?
            .ok_or_else(|| ApiError::invalid(format!("parameter {name} is required")))
    }

    /// An integer in `range`, `default` when absent.
    pub fn code(&self, name: &str, max: i64, default: i64) -> Result<i64, ApiError> {
        let v = self.int(name)?.unwrap_or(default);
        if (0..=max).contains(&v) {
            Ok(v)
        } else {
            Err(ApiError::invalid(format!(
                "parameter {name} must be 0..{max}, got {v}"
            )))
        }
    }

    pub fn date(&self, name: &str) -> Result<Option<NaiveDate>, ApiError> {
        self.text(name)
            .map(|t| {
                parse_date(t).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "parameter {name} must be a date yyyy-mm-dd, got {t:?}"
                    ))
                })
            })
            .transpose()
    }

    pub fn required_date(&self, name: &str) -> Result<NaiveDate, ApiError> {
        self.date(name)?
            .ok_or_else(|| ApiError::invalid(format!("parameter {name} is required (yyyy-mm-dd)")))
    }

    pub fn decimal(&self, name: &str) -> Result<Option<Decimal>, ApiError> {
        self.text(name)
            .map(|t| {
                t.parse::<Decimal>().map_err(|_| {
                    ApiError::invalid(format!(
                        "parameter {name} must be a decimal number, got {t:?}"
                    ))
                })
            })
            .transpose()
    }

    pub fn owned(&self, name: &str) -> Option<String> {
        self.text(name).map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_json_body_merge_case_insensitively() {
        let mut p = Params::from_query(Some("ID=5&fromdate=2023-05-01")).unwrap();
        p.add_body(
            Some("application/json"),
            br#"{"SubscriberId": 7, "DN": "2001", "bank": null, "amount": 370.00}"#,
        )
        .unwrap();
        assert_eq!(p.required_int("id").unwrap(), 5);
        assert_eq!(p.required_int("subscriberid").unwrap(), 7);
        assert_eq!(p.text("dn"), Some("2001"));
        assert_eq!(p.raw("bank"), Some(&PVal::Null));
        assert_eq!(p.decimal("amount").unwrap(), Some(Decimal::new(370, 0)));
        assert!(p.date("fromdate").unwrap().is_some());
    }

    #[test]
    fn form_body_and_errors() {
        let mut p = Params::default();
        p.add_body(
            Some("application/x-www-form-urlencoded"),
            b"id=x&paymentday=2023-13-01&bank=Privat+Bank",
        )
        .unwrap();
        assert_eq!(p.text("bank"), Some("Privat Bank"));
        let e = p.int("id").unwrap_err();
        assert_eq!((e.status, e.code), (400, "invalid_parameter"));
        assert!(e.message.contains("id"));
        assert!(p.date("paymentday").is_err());
        assert!(p.required_text("missing").is_err());
        assert!(p.code("id", 3, 0).is_err());
        assert!(Params::default().add_body(None, b"[1]").is_err());
    }
}

//! Request encoding: typed parameter values to a JSON body, a form body or a query
//! string, exactly as the guide documents them (`yyyy-mm-dd` dates, decimals with their
//! scale, unpadded integers).
//!
//! Owns: turning `(wire name, Param)` pairs into bytes. Must not: choose wire names
//! (the profile does) or know methods.

use chrono::NaiveDate;
use rust_decimal::Decimal;

/// One request parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
    Decimal(Decimal),
    Bool(bool),
    Date(NaiveDate),
    /// Clear the field (JSON `null`; an empty value in a form or query).
    Null,
}

impl Param {
    /// The value as form/query text.
    pub fn as_text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Int(i) => i.to_string(),
            Self::Decimal(d) => d.to_string(),
            Self::Bool(b) => b.to_string(),
            Self::Date(d) => d.format("%Y-%m-%d").to_string(),
            Self::Null => String::new(),
        }
    }

    fn as_json(&self) -> String {
        match self {
            Self::Text(s) => json_string(s),
            Self::Int(i) => i.to_string(),
            // Keeps the scale: 370.00 goes out as 370.00, not 370.0.
            Self::Decimal(d) => d.to_string(),
            Self::Bool(b) => b.to_string(),
            Self::Date(d) => format!("\"{}\"", d.format("%Y-%m-%d")),
            Self::Null => "null".to_owned(),
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// A flat JSON object, keys in the given order.
pub fn json_object(params: &[(String, Param)]) -> String {
    let fields: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}:{}", json_string(k), v.as_json()))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// `application/x-www-form-urlencoded` text (also used for query strings).
pub fn form(params: &[(String, Param)]) -> String {
    let pairs: Vec<(&str, String)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_text()))
        .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: Param) -> (String, Param) {
        (k.to_owned(), v)
    }

    #[test]
    fn json_keeps_documented_names_types_and_scale() {
        let params = vec![
            p("SubscriberId", Param::Int(7334)),
            p("DN", Param::Text("2001".into())),
            p("payment", Param::Decimal("370.00".parse().unwrap())),
            p(
                "fromdate",
                Param::Date(NaiveDate::from_ymd_opt(2023, 6, 2).unwrap()),
            ),
            p("ispublic", Param::Bool(true)),
            p("street", Param::Null),
            p("q", Param::Text("a\"b\\c\u{1}é".into())),
        ];
        let body = json_object(&params);
        assert_eq!(
            body,
            r#"{"SubscriberId":7334,"DN":"2001","payment":370.00,"fromdate":"2023-06-02","ispublic":true,"street":null,"q":"a\"b\\c\u0001é"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["q"], "a\"b\\c\u{1}é");
        assert_eq!(json_object(&[]), "{}");
    }

    #[test]
    fn form_and_query_text() {
        let params = vec![
            p("id", Param::Int(1234)),
            p("year", Param::Int(2025)),
            p("month", Param::Int(5)),
            p("bank", Param::Text("Privat Bank&Co".into())),
            p("street", Param::Null),
        ];
        assert_eq!(
            form(&params),
            "id=1234&year=2025&month=5&bank=Privat+Bank%26Co&street="
        );
    }
}

//! The subscriber fields the push side manages, in one canonical text form.
//!
//! Owns: the list of fields (one line each: name, kind, `subscriber.create` parameter if
//! create takes it, and the `model::Subscriber` value; each name is a `subscribers` column
//! of the same kind, checked by `store::subscriber_columns`' tests), and conversions between
//! `model` types and the canonical text values the planner compares. Must not: know wire
//! casing (the API profile maps names) or SQL.
//!
//! Canonical text: text fields as they are (empty string = empty), dates `yyyy-mm-dd`,
//! integers and codes in decimal, flags `true`/`false`, decimals normalised (`1.50` → `1.5`).

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::model::{Code, FieldValue, NewSubscriber, Subscriber, SubscriberPatch, SubscriberType};

/// The kind of value a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Date,
    Int,
    Bool,
    Decimal,
}

macro_rules! fields {
    ($( $variant:ident => $name:literal, $kind:ident, $create:expr, $get:expr; )*) => {
        /// A subscriber field, named by its `subscriber.get` name in lower case (plus the
        /// extensions `departmentid`, `rateplanid`, `connectiondate`, `bankname`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Field { $( $variant, )* }

        impl Field {
            /// Every field, in a fixed order.
            pub const ALL: &'static [Field] = &[ $( Field::$variant, )* ];

            /// The canonical name (also the `SubscriberPatch` key and the column name).
            pub fn name(self) -> &'static str {
                match self { $( Field::$variant => $name, )* }
            }

            pub fn kind(self) -> Kind {
                match self { $( Field::$variant => Kind::$kind, )* }
            }

            /// The `subscriber.create` parameter that carries this field, if create takes it.
            pub fn create_param(self) -> Option<&'static str> {
                match self { $( Field::$variant => $create, )* }
            }

            /// This field of a remote subscriber in canonical form (absent = empty).
            pub fn value_of(self, s: &Subscriber) -> String {
                match self {
                    $( Field::$variant => {
                        let get: fn(&Subscriber) -> String = $get;
                        get(s)
                    } )*
                }
            }
        }
    };
}

fields! {
    Fullname => "fullname", Text, Some("fullname"), |s| text(&s.fullname);
    DepartmentId => "departmentid", Int, Some("departmentid"), |s| opt(s.department_id);
    SubscriberType => "abonenttype", Int, Some("subscribertype"), |s| opt(s.subscriber_type.map(SubscriberType::code));
    ConnectionDate => "connectiondate", Date, Some("connectiondate"), |s| opt(s.connectiondate);
    ContractId => "contractid", Text, Some("contactnumber"), |s| text(&s.contract_number);
    ContractDate => "contractdate", Date, Some("contractdate"), |s| opt(s.contractdate);
    AccountId => "accountid", Text, Some("accountnumber"), |s| text(&s.account_number);
    PersonalCode => "personalcode", Text, Some("personalcode"), |s| text(&s.personalcode);
    Edrpou => "code", Text, Some("edrpou"), |s| text(&s.edrpou);
    TaxCode => "taxcode", Text, Some("taxcode"), |s| text(&s.taxcode);
    BankMfo => "bankmfo", Text, Some("bankcode"), |s| text(&s.bank_code);
    BankName => "bankname", Text, Some("bankname"), |s| text(&s.bankname);
    BankAccount => "bankaccount", Text, Some("bankaccount"), |s| text(&s.bankaccount);
    RatePlanId => "rateplanid", Int, Some("rateplanid"), |s| opt(s.rateplan_id);
    Street => "street", Text, None, |s| text(&s.street);
    House => "house", Text, None, |s| text(&s.house);
    Flat => "flat", Text, None, |s| text(&s.flat);
    Email => "email", Text, None, |s| text(&s.email);
    Description => "description", Text, None, |s| text(&s.description);
    AuthCode => "authcode", Text, None, |s| text(&s.authcode);
    IsPublic => "ispublic", Bool, None, |s| opt(s.ispublic);
    ZipCode => "zipcode", Text, None, |s| text(&s.zipcode);
    Information => "information", Text, None, |s| text(&s.information);
    PrivilegeInfo => "privilegeinfo", Text, None, |s| text(&s.privilegeinfo);
    Area => "area", Text, None, |s| text(&s.area);
    Building => "building", Text, None, |s| text(&s.building);
    FloorNumber => "floornumber", Text, None, |s| text(&s.floornumber);
    Gender => "gender", Int, None, |s| opt(s.gender.map(|Code(c)| c));
    Birthday => "birthday", Date, None, |s| opt(s.birthday);
    DeliveryType => "deliverytype", Int, None, |s| opt(s.deliverytype.map(|Code(c)| c));
    PrivilegeDiscount => "privilegediscount", Decimal, None, |s| opt(s.privilegediscount.map(|d| d.normalize()));
}

impl FromStr for Field {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Field::ALL
            .iter()
            .copied()
            .find(|f| f.name() == lower)
            .ok_or_else(|| format!("unknown subscriber field {s:?}"))
    }
}

/// Field values in canonical text form.
pub type Fields = BTreeMap<Field, String>;

/// Normalises a value for `field`: `Err` says why it is not valid for the field's kind.
pub fn canonical(field: Field, raw: &str) -> Result<String, String> {
    let v = raw.trim();
    match field.kind() {
        Kind::Text => Ok(raw.to_string()),
        _ if v.is_empty() => Ok(String::new()),
        Kind::Date => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(|d| d.to_string())
            .map_err(|_| format!("{v:?} is not a date (yyyy-mm-dd)")),
        Kind::Int => v
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| format!("{v:?} is not a whole number")),
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok("true".into()),
            "false" | "0" | "no" => Ok("false".into()),
            _ => Err(format!("{v:?} is not true or false")),
        },
        // Decimal commas (`12,50`) as Ukrainian files write them: `crate::records`.
        Kind::Decimal => Decimal::from_str(&crate::records::normalize_decimal(v))
            .map(|d| d.normalize().to_string())
            .map_err(|_| format!("{v:?} is not a decimal number")),
    }
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Every field of a remote subscriber in canonical form (absent values are empty).
pub fn fields_of(s: &Subscriber) -> Fields {
    Field::ALL.iter().map(|&f| (f, f.value_of(s))).collect()
}

/// The typed value of a canonical text (empty = `None`).
pub fn field_value(field: Field, v: &str) -> FieldValue {
    let none_if_empty = (!v.is_empty()).then_some(v);
    match field.kind() {
        Kind::Text => FieldValue::Text(Some(v.to_string())),
        Kind::Date => FieldValue::Date(none_if_empty.and_then(|s| s.parse().ok())),
        Kind::Int => FieldValue::Int(none_if_empty.and_then(|s| s.parse().ok())),
        Kind::Bool => FieldValue::Bool(none_if_empty.map(|s| s == "true")),
        Kind::Decimal => FieldValue::Decimal(none_if_empty.and_then(|s| s.parse().ok())),
    }
}

/// A `subscriber.update` of the given fields.
pub fn patch(id: i64, changes: &Fields) -> SubscriberPatch {
    SubscriberPatch {
        id,
        fields: changes
            .iter()
            .map(|(f, v)| (f.name().to_string(), field_value(*f, v)))
            .collect(),
    }
}

/// The `subscriber.create` request for the create-able fields among `fields`.
pub fn new_subscriber(fields: &Fields) -> NewSubscriber {
    let get = |f: Field| fields.get(&f).filter(|v| !v.is_empty()).cloned();
    let int = |f: Field| get(f).and_then(|v| v.parse::<i64>().ok());
    let date = |f: Field| get(f).and_then(|v| v.parse::<NaiveDate>().ok());
    NewSubscriber {
        fullname: get(Field::Fullname).unwrap_or_default(),
        department_id: int(Field::DepartmentId),
        subscriber_type: int(Field::SubscriberType).map(SubscriberType::from_code),
        connectiondate: date(Field::ConnectionDate),
        contract_number: get(Field::ContractId),
        contractdate: date(Field::ContractDate),
        account_number: get(Field::AccountId),
        personalcode: get(Field::PersonalCode),
        edrpou: get(Field::Edrpou),
        taxcode: get(Field::TaxCode),
        bank_code: get(Field::BankMfo),
        bankname: get(Field::BankName),
        bankaccount: get(Field::BankAccount),
        rateplan_id: int(Field::RatePlanId),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut names: Vec<_> = Field::ALL.iter().map(|f| f.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Field::ALL.len());
        for f in Field::ALL {
            assert_eq!(f.name().parse::<Field>().unwrap(), *f);
        }
        assert_eq!("House".parse::<Field>().unwrap(), Field::House);
        assert!("nope".parse::<Field>().is_err());
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical(Field::PrivilegeDiscount, "1.50").unwrap(), "1.5");
        assert_eq!(canonical(Field::IsPublic, "1").unwrap(), "true");
        assert_eq!(
            canonical(Field::Birthday, " 1990-02-03 ").unwrap(),
            "1990-02-03"
        );
        assert!(canonical(Field::Birthday, "03.02.1990").is_err());
        assert!(canonical(Field::DepartmentId, "x").is_err());
        assert_eq!(canonical(Field::Street, " Main ").unwrap(), " Main ");
    }

    #[test]
    fn remote_fields_round_trip_through_create_and_patch() {
        let s = Subscriber {
            id: 7,
            fullname: Some("TOV Kyivstar-Service".into()),
            department_id: Some(3),
            subscriber_type: Some(SubscriberType::LegalEntity),
            edrpou: Some("55667788".into()),
            privilegediscount: Some(Decimal::new(150, 2)),
            ..Default::default()
        };
        let f = fields_of(&s);
        assert_eq!(f[&Field::SubscriberType], "1");
        assert_eq!(f[&Field::PrivilegeDiscount], "1.5");
        assert_eq!(f[&Field::Street], "");
        let n = new_subscriber(&f);
        assert_eq!(n.edrpou.as_deref(), Some("55667788"));
        assert_eq!(n.subscriber_type, Some(SubscriberType::LegalEntity));
        let p = patch(7, &[(Field::Street, "Khreshchatyk".to_string())].into());
        assert_eq!(p.fields[0].0, "street");
    }
}

//! The one list of the `subscribers` table's data columns (issue 17).
//!
//! Owns: each column's name (as `subscriber.get` names it, lower case; the change log uses
//! these names too), its position, its storage kind, and the `model::Subscriber` field it
//! holds, written once in `columns!`; from that list come `FIELDS`, `field_cols` (a record's
//! values, in column order) and `from_values` (a stored row back into a record). Adding a
//! column is one line here plus a migration, and, if the push manages it, one line in
//! `sync::fields` (its kind, create parameter and model accessor; the tests below fail when
//! that line names no column here or another kind). Must not: reorder columns (the content hash
//! covers them in this order, and `migrations/0001_mirror.sql` creates them in it).

use rusqlite::types::Value;

use super::StoreError;
use super::values::{Col, Reader};
use crate::model::{Code, DnAssignment, Subscriber, SubscriberId, SubscriberType};

/// A column's value for the writer: text is borrowed, the rest copied.
macro_rules! col {
    (text, $v:expr) => {
        Col::text(&$v)
    };
    ($kind:ident, $v:expr) => {
        Col::$kind($v)
    };
}

/// `"column": field, kind` (kind: text, int, flag, date, dec), optionally
/// `via (to_column, from_column)` for a field whose type is not the column's.
macro_rules! columns {
    ($( $name:literal : $field:ident, $kind:ident $(via ($to:expr, $from:expr))? ;)*) => {
        /// The subscriber columns besides `id`, in table order.
        pub(crate) const FIELDS: &[&str] = &[$($name),*];

        /// Each column's storage kind, in `FIELDS` order (checked against `sync::fields`).
        #[cfg(test)]
        const KINDS: &[&str] = &[$(stringify!($kind)),*];

        /// The column values of `s`, in `FIELDS` order, borrowing its text.
        pub(super) fn field_cols(s: &Subscriber) -> Vec<Col<'_>> {
            vec![$( col!($kind, s.$field$(.map($to))?) ),*]
        }

        /// A stored row (`FIELDS` order) and its DNs back into a record.
        pub(super) fn from_values(
            id: SubscriberId,
            v: &[Value],
            dns: Vec<DnAssignment>,
        ) -> Result<Subscriber, StoreError> {
            let r = Reader {
                table: "subscribers",
                values: v,
                names: FIELDS,
            };
            let mut i = 0..;
            $( let $field = r.$kind(i.next().unwrap_or_default())?$(.map($from))?; )*
            Ok(Subscriber { id, $($field,)* dns: Some(dns) })
        }
    };
}

columns! {
    "fullname": fullname, text;
    "street": street, text;
    "house": house, text;
    "flat": flat, text;
    "email": email, text;
    "description": description, text;
    "authcode": authcode, text;
    "ispublic": ispublic, flag;
    "abonenttype": subscriber_type, int via (SubscriberType::code, SubscriberType::from_code);
    "code": edrpou, text;
    "zipcode": zipcode, text;
    "personalcode": personalcode, text;
    "contractid": contract_number, text;
    "information": information, text;
    "privilegeinfo": privilegeinfo, text;
    "area": area, text;
    "contractdate": contractdate, date;
    "building": building, text;
    "floornumber": floornumber, text;
    "accountid": account_number, text;
    "gender": gender, int via (|c: Code| c.0, Code);
    "birthday": birthday, date;
    "bankaccount": bankaccount, text;
    "bankmfo": bank_code, text;
    "taxcode": taxcode, text;
    "deliverytype": deliverytype, int via (|c: Code| c.0, Code);
    "privilegediscount": privilegediscount, dec;
    "departmentid": department_id, int;
    "nodeid": node_id, int;
    "rateplanid": rateplan_id, int;
    "connectiondate": connectiondate, date;
    "bankname": bankname, text;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fields::{Field, Kind};

    /// The push side's fields (`sync::fields`) are columns here, of the matching kind: a
    /// field added there without its column (or with another kind) fails here.
    #[test]
    fn every_push_field_is_a_column_of_its_kind() {
        for f in Field::ALL {
            let i = FIELDS
                .iter()
                .position(|c| *c == f.name())
                .unwrap_or_else(|| panic!("push field {} has no subscribers column", f.name()));
            let want = match f.kind() {
                Kind::Text => "text",
                Kind::Int => "int",
                Kind::Bool => "flag",
                Kind::Date => "date",
                Kind::Decimal => "dec",
            };
            assert_eq!(KINDS[i], want, "column {} kind", f.name());
        }
    }

    /// A record stored and read back keeps every push field's canonical value.
    #[test]
    fn stored_values_read_back_as_the_push_side_sees_them() {
        let s = Subscriber {
            id: 5,
            fullname: Some("Ivanenko".into()),
            subscriber_type: Some(SubscriberType::LegalEntity),
            gender: Some(Code(2)),
            birthday: chrono::NaiveDate::from_ymd_opt(1990, 2, 3),
            ispublic: Some(true),
            privilegediscount: Some(rust_decimal::Decimal::new(150, 2)),
            department_id: Some(7),
            edrpou: Some("55667788".into()),
            ..Default::default()
        };
        let values: Vec<Value> = field_cols(&s).iter().map(Col::to_value).collect();
        let back = from_values(5, &values, vec![]).unwrap();
        for f in Field::ALL {
            assert_eq!(f.value_of(&back), f.value_of(&s), "field {}", f.name());
        }
    }
}

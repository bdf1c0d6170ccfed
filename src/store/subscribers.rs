//! The `subscribers`, `dns` and `subscriber_changes` tables.
//!
//! Owns: how a `model::Subscriber` maps to columns, its content hash, the diff against the
//! stored row (insert / update with changed fields / restore / tombstone) and the change log.
//! Must not: hard-delete a subscriber, or write a row whose content did not change (a no-op
//! pull writes nothing).

use std::collections::HashSet;
use std::sync::LazyLock;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use sha2::{Digest, Sha256};

use super::values::{self, Reader};
use super::{Store, StoreError};
use crate::model::{Code, DnAssignment, Subscriber, SubscriberId, SubscriberType};

/// The subscriber columns besides `id`, named as `subscriber.get` names them (lower case).
/// The change log uses these names too.
pub(crate) const FIELDS: [&str; 32] = [
    "fullname",
    "street",
    "house",
    "flat",
    "email",
    "description",
    "authcode",
    "ispublic",
    "abonenttype",
    "code",
    "zipcode",
    "personalcode",
    "contractid",
    "information",
    "privilegeinfo",
    "area",
    "contractdate",
    "building",
    "floornumber",
    "accountid",
    "gender",
    "birthday",
    "bankaccount",
    "bankmfo",
    "taxcode",
    "deliverytype",
    "privilegediscount",
    "departmentid",
    "nodeid",
    "rateplanid",
    "connectiondate",
    "bankname",
];

/// The column values of `s`, in `FIELDS` order.
fn field_values(s: &Subscriber) -> Vec<Value> {
    use values::{date, dec, flag, int, text};
    vec![
        text(&s.fullname),
        text(&s.street),
        text(&s.house),
        text(&s.flat),
        text(&s.email),
        text(&s.description),
        text(&s.authcode),
        flag(s.ispublic),
        int(s.subscriber_type.map(SubscriberType::code)),
        text(&s.edrpou),
        text(&s.zipcode),
        text(&s.personalcode),
        text(&s.contract_number),
        text(&s.information),
        text(&s.privilegeinfo),
        text(&s.area),
        date(s.contractdate),
        text(&s.building),
        text(&s.floornumber),
        text(&s.account_number),
        int(s.gender.map(|c| c.0)),
        date(s.birthday),
        text(&s.bankaccount),
        text(&s.bank_code),
        text(&s.taxcode),
        int(s.deliverytype.map(|c| c.0)),
        dec(s.privilegediscount),
        int(s.department_id),
        int(s.node_id),
        int(s.rateplan_id),
        date(s.connectiondate),
        text(&s.bankname),
    ]
}

fn from_values(
    id: SubscriberId,
    v: &[Value],
    dns: Vec<DnAssignment>,
) -> Result<Subscriber, StoreError> {
    let r = Reader {
        table: "subscribers",
        values: v,
        names: &FIELDS,
    };
    Ok(Subscriber {
        id,
        fullname: r.text(0)?,
        street: r.text(1)?,
        house: r.text(2)?,
        flat: r.text(3)?,
        email: r.text(4)?,
        description: r.text(5)?,
        authcode: r.text(6)?,
        ispublic: r.flag(7)?,
        subscriber_type: r.int(8)?.map(SubscriberType::from_code),
        edrpou: r.text(9)?,
        zipcode: r.text(10)?,
        personalcode: r.text(11)?,
        contract_number: r.text(12)?,
        information: r.text(13)?,
        privilegeinfo: r.text(14)?,
        area: r.text(15)?,
        contractdate: r.date(16)?,
        building: r.text(17)?,
        floornumber: r.text(18)?,
        account_number: r.text(19)?,
        gender: r.int(20)?.map(Code),
        birthday: r.date(21)?,
        bankaccount: r.text(22)?,
        bank_code: r.text(23)?,
        taxcode: r.text(24)?,
        deliverytype: r.int(25)?.map(Code),
        privilegediscount: r.dec(26)?,
        department_id: r.int(27)?,
        node_id: r.int(28)?,
        rateplan_id: r.int(29)?,
        connectiondate: r.date(30)?,
        bankname: r.text(31)?,
        dns: Some(dns),
    })
}

/// A DN as stored, in a canonical order for hashing and comparing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DnRow {
    pbx_id: Option<i64>,
    dn: String,
    dn_id: Option<i64>,
    from_date: Option<String>,
    description: Option<String>,
}

fn dn_rows(dns: &[DnAssignment]) -> Vec<DnRow> {
    let mut rows: Vec<DnRow> = dns
        .iter()
        .map(|d| DnRow {
            pbx_id: d.pbx_id,
            dn: d.dn.clone(),
            dn_id: d.id,
            from_date: d.from_date.map(|d| d.to_string()),
            description: d.description.clone(),
        })
        .collect();
    rows.sort();
    rows
}

fn dns_json(rows: &[DnRow]) -> serde_json::Value {
    rows.iter()
        .map(|r| serde_json::json!({"pbx_id": r.pbx_id, "dn": r.dn, "from_date": r.from_date, "description": r.description}))
        .collect()
}

fn hash(fields: &[Value], dns: Option<&[DnRow]>) -> String {
    let mut h = Sha256::new();
    for v in fields {
        values::hash_value(&mut h, v);
    }
    if let Some(dns) = dns {
        h.update(b"dns");
        for d in dns {
            for v in [
                values::int(d.pbx_id),
                Value::Text(d.dn.clone()),
                values::int(d.dn_id),
                values::text(&d.from_date),
                values::text(&d.description),
            ] {
                values::hash_value(&mut h, &v);
            }
        }
    }
    values::hex(&h.finalize())
}

/// The content hash stored in `subscribers.content_hash`: SHA-256 over every field (and the
/// DNs when the record carries them), hex. Equal records hash equal.
pub fn content_hash(s: &Subscriber) -> String {
    let dns = s.dns.as_deref().map(dn_rows);
    hash(&field_values(s), dns.as_deref())
}

/// What one `apply_subscribers` call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    pub inserted: u64,
    pub updated: u64,
    pub restored: u64,
    pub unchanged: u64,
}

static INSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    let cols = FIELDS.join(", ");
    let marks: Vec<String> = (2..=FIELDS.len() + 4).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO subscribers (id, {cols}, content_hash, first_seen_at, updated_at) VALUES (?1, {})",
        marks.join(", ")
    )
});

static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = FIELDS
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{f} = ?{}", i + 2))
        .collect();
    let n = FIELDS.len();
    format!(
        "UPDATE subscribers SET {}, content_hash = ?{}, updated_at = ?{}, removed_at = NULL WHERE id = ?1",
        sets.join(", "),
        n + 2,
        n + 3
    )
});

static SELECT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM subscribers WHERE id = ?1",
        FIELDS.join(", ")
    )
});

fn load_fields(conn: &Connection, id: SubscriberId) -> Result<Option<Vec<Value>>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&SELECT_SQL)
        .map_err(StoreError::sql("preparing the subscriber read"))?;
    stmt.query_row([id], |row| {
        (0..FIELDS.len()).map(|i| row.get::<_, Value>(i)).collect()
    })
    .optional()
    .map_err(StoreError::sql("reading a subscriber"))
}

fn load_dns(conn: &Connection, id: SubscriberId) -> Result<Vec<DnRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT pbx_id, dn, dn_id, from_date, description FROM dns WHERE subscriber_id = ?1",
        )
        .map_err(StoreError::sql("preparing the DN read"))?;
    let rows = stmt
        .query_map([id], |r| {
            Ok(DnRow {
                pbx_id: r.get(0)?,
                dn: r.get(1)?,
                dn_id: r.get(2)?,
                from_date: r.get(3)?,
                description: r.get(4)?,
            })
        })
        .map_err(StoreError::sql("reading DNs"))?;
    let mut out = rows
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("reading DNs"))?;
    out.sort();
    Ok(out)
}

/// Replaces a subscriber's DNs (`fresh`: it has none yet, skip the delete).
fn replace_dns(
    conn: &Connection,
    id: SubscriberId,
    dns: &[DnRow],
    fresh: bool,
) -> Result<(), StoreError> {
    if !fresh {
        conn.prepare_cached("DELETE FROM dns WHERE subscriber_id = ?1")
            .and_then(|mut s| s.execute([id]))
            .map_err(StoreError::sql("deleting old DNs"))?;
    }
    let mut ins = conn
        .prepare_cached(
            "INSERT INTO dns (subscriber_id, dn_id, pbx_id, dn, from_date, description) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(StoreError::sql("preparing the DN insert"))?;
    for d in dns {
        ins.execute(params![
            id,
            d.dn_id,
            d.pbx_id,
            d.dn,
            d.from_date,
            d.description
        ])
        .map_err(StoreError::sql("inserting a DN"))?;
    }
    Ok(())
}

fn log_change(
    conn: &Connection,
    run_id: i64,
    id: SubscriberId,
    kind: &str,
    fields: Option<&serde_json::Value>,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO subscriber_changes (run_id, subscriber_id, kind, changed_fields, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![run_id, id, kind, fields.map(|f| f.to_string()), now]))
    .map_err(StoreError::sql("writing the change log"))?;
    Ok(())
}

/// Applies pulled records: inserts new ones, updates changed ones (logging `{"field": [old,
/// new]}`), restores tombstoned ones that reappeared. Unchanged records are not written.
fn apply(
    conn: &Connection,
    run_id: i64,
    records: &[Subscriber],
    now: &str,
) -> Result<ApplyCounts, StoreError> {
    let mut counts = ApplyCounts::default();
    for s in records {
        let fields = field_values(s);
        let dns = s.dns.as_deref().map(dn_rows);
        let new_hash = hash(&fields, dns.as_deref());
        let existing: Option<(String, Option<String>)> = conn
            .prepare_cached("SELECT content_hash, removed_at FROM subscribers WHERE id = ?1")
            .and_then(|mut st| {
                st.query_row([s.id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(StoreError::sql("looking up a subscriber"))?;
        match existing {
            None => {
                let mut p: Vec<Value> = Vec::with_capacity(FIELDS.len() + 4);
                p.push(Value::Integer(s.id));
                p.extend(fields);
                p.push(Value::Text(new_hash));
                p.push(Value::Text(now.to_owned()));
                p.push(Value::Text(now.to_owned()));
                conn.prepare_cached(&INSERT_SQL)
                    .and_then(|mut st| st.execute(params_from_iter(p)))
                    .map_err(StoreError::sql("inserting a subscriber"))?;
                if let Some(dns) = &dns {
                    replace_dns(conn, s.id, dns, true)?;
                }
                log_change(conn, run_id, s.id, "inserted", None, now)?;
                counts.inserted += 1;
            }
            Some((old_hash, removed)) if old_hash == new_hash && removed.is_none() => {
                counts.unchanged += 1;
            }
            Some((_, removed)) => {
                let old = load_fields(conn, s.id)?.unwrap_or_default();
                let mut changed = serde_json::Map::new();
                for (i, name) in FIELDS.iter().enumerate() {
                    let before = old.get(i).unwrap_or(&Value::Null);
                    if before != &fields[i] {
                        changed.insert(
                            (*name).to_owned(),
                            serde_json::json!([
                                values::to_json(before),
                                values::to_json(&fields[i])
                            ]),
                        );
                    }
                }
                if let Some(new_dns) = &dns {
                    let old_dns = load_dns(conn, s.id)?;
                    if &old_dns != new_dns {
                        changed.insert(
                            "dns".into(),
                            serde_json::json!([dns_json(&old_dns), dns_json(new_dns)]),
                        );
                        replace_dns(conn, s.id, new_dns, false)?;
                    }
                }
                let mut p: Vec<Value> = Vec::with_capacity(FIELDS.len() + 3);
                p.push(Value::Integer(s.id));
                p.extend(fields);
                p.push(Value::Text(new_hash));
                p.push(Value::Text(now.to_owned()));
                conn.prepare_cached(&UPDATE_SQL)
                    .and_then(|mut st| st.execute(params_from_iter(p)))
                    .map_err(StoreError::sql("updating a subscriber"))?;
                let kind = if removed.is_some() {
                    "restored"
                } else {
                    "updated"
                };
                log_change(
                    conn,
                    run_id,
                    s.id,
                    kind,
                    Some(&serde_json::Value::Object(changed)),
                    now,
                )?;
                if removed.is_some() {
                    counts.restored += 1;
                } else {
                    counts.updated += 1;
                }
            }
        }
    }
    Ok(counts)
}

/// Tombstones (`removed_at = now`) every live subscriber not in `seen`; returns how many.
fn tombstone(
    conn: &Connection,
    run_id: i64,
    seen: &HashSet<SubscriberId>,
    now: &str,
) -> Result<u64, StoreError> {
    let live: Vec<SubscriberId> = conn
        .prepare_cached("SELECT id FROM subscribers WHERE removed_at IS NULL")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(StoreError::sql("listing live subscribers"))?;
    let mut removed = 0;
    for id in live.into_iter().filter(|id| !seen.contains(id)) {
        conn.prepare_cached("UPDATE subscribers SET removed_at = ?2 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![id, now]))
            .map_err(StoreError::sql("tombstoning a subscriber"))?;
        log_change(conn, run_id, id, "removed", None, now)?;
        removed += 1;
    }
    Ok(removed)
}

impl Store {
    /// Applies a batch of pulled subscribers in one transaction (see `apply`). `now` is the
    /// RFC 3339 timestamp written to `first_seen_at` / `updated_at` / the change log.
    pub async fn apply_subscribers(
        &self,
        run_id: i64,
        records: Vec<Subscriber>,
        now: String,
    ) -> Result<ApplyCounts, StoreError> {
        self.write(move |conn| apply(conn, run_id, &records, &now))
            .await
    }

    /// Tombstones live subscribers that the run did not see. Call only when every list of
    /// the scope was read completely.
    pub async fn tombstone_unseen(
        &self,
        run_id: i64,
        seen: HashSet<SubscriberId>,
        now: String,
    ) -> Result<u64, StoreError> {
        self.write(move |conn| tombstone(conn, run_id, &seen, &now))
            .await
    }

    /// Ids of subscribers not tombstoned, ascending: the set the account jobs pull for.
    pub async fn live_subscriber_ids(&self) -> Result<Vec<SubscriberId>, StoreError> {
        self.read(|conn| {
            conn.prepare("SELECT id FROM subscribers WHERE removed_at IS NULL ORDER BY id")
                .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                .map_err(StoreError::sql("listing live subscribers"))
        })
        .await
    }

    /// One subscriber as stored (with its DNs; `dns` is always `Some`), tombstoned or not.
    pub async fn subscriber(&self, id: SubscriberId) -> Result<Option<Subscriber>, StoreError> {
        self.read(move |conn| {
            let Some(fields) = load_fields(conn, id)? else {
                return Ok(None);
            };
            let dns = load_dns(conn, id)?
                .into_iter()
                .map(|d| {
                    Ok(DnAssignment {
                        id: d.dn_id,
                        subscriber_id: id,
                        pbx_id: d.pbx_id,
                        dn: d.dn,
                        from_date: match d.from_date {
                            None => None,
                            Some(t) => Some(t.parse().map_err(|_| StoreError::Corrupt {
                                table: "dns",
                                column: "from_date",
                                value: t,
                            })?),
                        },
                        description: d.description,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            from_values(id, &fields, dns).map(Some)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Subscriber {
        Subscriber {
            id: 7,
            fullname: Some("A".into()),
            house: Some("1".into()),
            privilegediscount: Some("2.50".parse().unwrap()),
            dns: Some(vec![
                DnAssignment {
                    dn: "1".into(),
                    pbx_id: Some(1),
                    ..DnAssignment::default()
                },
                DnAssignment {
                    dn: "2".into(),
                    pbx_id: Some(1),
                    ..DnAssignment::default()
                },
            ]),
            ..Subscriber::default()
        }
    }

    #[test]
    fn content_hash_sees_every_change_and_ignores_dn_order() {
        let base = content_hash(&sample());
        assert_eq!(base.len(), 64);
        let mut reordered = sample();
        reordered.dns.as_mut().unwrap().reverse();
        assert_eq!(content_hash(&reordered), base);
        type Edit = Box<dyn Fn(&mut Subscriber)>;
        let edits: Vec<(&str, Edit)> = vec![
            ("fullname", Box::new(|s| s.fullname = Some("B".into()))),
            ("house cleared", Box::new(|s| s.house = None)),
            ("empty vs null", Box::new(|s| s.flat = Some(String::new()))),
            (
                "decimal",
                Box::new(|s| s.privilegediscount = Some("2.51".parse().unwrap())),
            ),
            (
                "dn",
                Box::new(|s| s.dns.as_mut().unwrap()[0].dn = "3".into()),
            ),
            ("dns absent", Box::new(|s| s.dns = None)),
            (
                "text moved between fields",
                Box::new(|s| {
                    s.fullname = None;
                    s.street = Some("A".into());
                }),
            ),
        ];
        for (name, edit) in edits {
            let mut s = sample();
            edit(&mut s);
            assert_ne!(content_hash(&s), base, "{name}");
        }
    }

    #[test]
    fn every_field_round_trips_through_the_columns() {
        let t = |v: &str| Some(v.to_owned());
        let d = chrono::NaiveDate::from_ymd_opt(2020, 2, 29);
        let s = Subscriber {
            id: 7,
            fullname: t("fullname"),
            street: t("street"),
            house: t("house"),
            flat: t("flat"),
            email: t("email"),
            description: t("description"),
            authcode: t("authcode"),
            ispublic: Some(true),
            subscriber_type: Some(SubscriberType::Other(9)),
            edrpou: t("00123456"),
            zipcode: t("zipcode"),
            personalcode: t("personalcode"),
            contract_number: t("247-23"),
            information: t("information"),
            privilegeinfo: t("privilegeinfo"),
            area: t("area"),
            contractdate: d,
            building: t("building"),
            floornumber: t("floornumber"),
            account_number: t("0042"),
            gender: Some(Code(2)),
            birthday: d,
            bankaccount: t("bankaccount"),
            bank_code: t("bankmfo"),
            taxcode: t("taxcode"),
            deliverytype: Some(Code(1)),
            privilegediscount: Some("12.50".parse().unwrap()),
            department_id: Some(11),
            node_id: Some(1),
            rateplan_id: Some(3),
            connectiondate: d,
            bankname: t("bankname"),
            dns: Some(vec![]),
        };
        let values = field_values(&s);
        assert_eq!(values.len(), FIELDS.len());
        assert!(values.iter().all(|v| v != &Value::Null), "every field set");
        let back = from_values(7, &values, vec![]).unwrap();
        assert_eq!(back, s);
    }
}

//! Desired-state storage tests on in-memory SQLite.

use super::*;
use crate::model::Rejection;
use crate::model::desired::{DesiredDn, DnKey};
use crate::model::fields::canonical;

/// An import of three rows (built here: parsing files is `sync::import`'s, tested there):
/// `a` with two numbers, `b`, and `c` rejected for its missing fullname.
fn batch() -> ImportBatch {
    let row = |key: &str, fields: &[(Field, &str)], dns: &[i64]| DesiredSubscriber {
        key: key.into(),
        tariscope_id: None,
        fields: fields
            .iter()
            .map(|&(f, v)| (f, canonical(f, v).unwrap()))
            .collect(),
        dns: dns
            .iter()
            .map(|dn| DesiredDn {
                pbx_id: 292,
                dn: dn.to_string(),
                from_date: None,
                description: None,
            })
            .collect(),
    };
    ImportBatch {
        rows: vec![
            row(
                "a",
                &[
                    (Field::Fullname, "Kovalenko Olena"),
                    (Field::DepartmentId, "3"),
                    (Field::SubscriberType, "0"),
                    (Field::IsPublic, "1"),
                    (Field::PrivilegeDiscount, "2.50"),
                ],
                &[2001, 2002],
            ),
            row(
                "b",
                &[
                    (Field::Fullname, "Bondar Ivan"),
                    (Field::DepartmentId, "3"),
                    (Field::SubscriberType, "1"),
                ],
                &[],
            ),
        ],
        rejected: vec![Rejection {
            row: 4,
            key: Some("c".into()),
            field: Some("fullname".into()),
            value: None,
            expected: Some("a non-empty text".into()),
            reason: "c: missing fullname".into(),
        }],
    }
}

fn now() -> String {
    "2025-05-20T10:00:00Z".into()
}

#[tokio::test]
async fn import_round_trips_and_reimport_changes_nothing() {
    for backend in crate::store::test_backends::backends().await {
        let store = crate::store::test_backends::on(&backend);
        let batch = batch();
        let counts = store
            .import_desired(batch.clone(), "f.csv".into(), now())
            .await
            .unwrap();
        assert_eq!(
            counts,
            ImportCounts {
                inserted: 2,
                updated: 0,
                unchanged: 0,
                rejected: 1
            }
        );
        let rows = store.desired_subscribers().await.unwrap();
        assert_eq!(rows, batch.rows, "what is read back is what was imported");
        assert_eq!(rows[0].fields[&Field::IsPublic], "true");
        assert_eq!(rows[0].fields[&Field::PrivilegeDiscount], "2.5");

        let before = store.total_changes().await.unwrap();
        let again = store
            .import_desired(batch, "f.csv".into(), now())
            .await
            .unwrap();
        assert_eq!(
            again,
            ImportCounts {
                inserted: 0,
                updated: 0,
                unchanged: 2,
                rejected: 1
            }
        );
        // Only the rejected row of this source is replaced (one delete, one insert).
        assert_eq!(store.total_changes().await.unwrap() - before, 2);
        let rejected = store.rejected_rows().await.unwrap();
        assert_eq!(rejected.len(), 1);
        assert!(
            rejected[0]
                .rejection
                .reason
                .starts_with("c: missing fullname")
        );
        assert_eq!(rejected[0].rejection.field.as_deref(), Some("fullname"));
    }
}

#[tokio::test]
async fn link_base_and_plan_inputs() {
    for backend in crate::store::test_backends::backends().await {
        let store = crate::store::test_backends::on(&backend);
        store
            .import_desired(batch(), "f.csv".into(), now())
            .await
            .unwrap();
        store.link_desired("a".into(), 77).await.unwrap();
        let base: Fields = [(Field::Fullname, "Kovalenko Olena".to_string())].into();
        store
            .set_base("a".into(), base.clone(), now())
            .await
            .unwrap();
        assert_eq!(store.merge_base().await.unwrap().fields["a"], base);
        let rows = store.desired_subscribers().await.unwrap();
        assert_eq!(rows[0].tariscope_id, Some(77));
        // A re-import without tariscope_id keeps the link.
        store
            .import_desired(batch(), "f.csv".into(), now())
            .await
            .unwrap();
        assert_eq!(
            store.desired_subscribers().await.unwrap()[0].tariscope_id,
            Some(77)
        );
        assert!(store.remote_for_plan().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn rows_written_with_sql_are_read_as_written() {
    for backend in crate::store::test_backends::backends().await {
        let store = crate::store::test_backends::on(&backend);
        if store.is_postgres() {
            // PostgreSQL's typed columns refuse what SQLite keeps as written.
            let refused = store
                .write(|conn| {
                    conn.execute_batch(
                        "INSERT INTO desired_subscribers (key, departmentid) VALUES ('a', 'abc')",
                    )
                    .map_err(StoreError::sql("test rows"))
                })
                .await
                .unwrap_err()
                .to_string();
            assert!(
                refused.contains("invalid input syntax for type bigint"),
                "{refused}"
            );
            continue;
        }
        store
            .write(|conn| {
                conn.execute_batch(
                    "INSERT INTO desired_subscribers (key, fullname, departmentid, abonenttype, street, birthday) \
                     VALUES ('a', 'A', 'abc', '2', x'00ff', 20200101), ('b', 'B', '1201', 1.5, NULL, NULL); \
                     INSERT INTO desired_dns (key, pbx_id, dn) VALUES ('a', '291', 2001);",
                )
                .map_err(StoreError::sql("test rows"))
            })
            .await
            .unwrap();
        let rows = store.desired_rows().await.unwrap();
        assert_eq!(rows.len(), 2);
        let col = |r: &RawDesired, name: &str| {
            r.columns
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, c)| c.clone())
                .unwrap()
        };
        // SQLite converted what converts exactly and kept the rest as written.
        assert_eq!(col(&rows[0], "departmentid"), Cell::Text("abc".into()));
        assert_eq!(col(&rows[0], "abonenttype"), Cell::Int(2));
        assert_eq!(col(&rows[0], "street"), Cell::Blob(vec![0, 0xff]));
        assert_eq!(col(&rows[0], "birthday"), Cell::Text("20200101".into()));
        assert_eq!(col(&rows[1], "departmentid"), Cell::Int(1201));
        assert_eq!(col(&rows[1], "abonenttype"), Cell::Real(1.5));
        assert_eq!(col(&rows[1], "tariscope_id"), Cell::Null);
        assert_eq!(rows[0].dns.len(), 1);
        assert_eq!(
            (&rows[0].dns[0].pbx_id, &rows[0].dns[0].dn),
            (&Cell::Int(291), &Cell::Text("2001".into()))
        );
    }
}

#[tokio::test]
async fn table_rejections_stand_until_the_row_changes() {
    for backend in crate::store::test_backends::backends().await {
        let store = crate::store::test_backends::on(&backend);
        let r = |key: &str, reason: &str| Rejection {
            key: Some(key.into()),
            field: Some("birthday".into()),
            reason: reason.into(),
            ..Rejection::default()
        };
        let tables = || vec!["desired_subscribers", "desired_dns"];
        let first = vec![
            ("desired_subscribers", "fp1".to_string(), r("a", "bad a")),
            ("desired_subscribers", "fp2".to_string(), r("b", "bad b")),
        ];
        let new = store
            .replace_table_rejections(tables(), first.clone(), "2026-01-01T00:00:01Z".into())
            .await
            .unwrap();
        assert_eq!(new.len(), 2);
        // Same rows again: nothing new, first time kept. Row b changed (still bad); a was fixed.
        let again = store
            .replace_table_rejections(tables(), first[..1].to_vec(), "2026-01-01T00:00:02Z".into())
            .await
            .unwrap();
        assert!(again.is_empty());
        let changed = vec![
            first[0].clone(),
            ("desired_subscribers", "fp3".to_string(), r("b", "bad b")),
        ];
        let new = store
            .replace_table_rejections(tables(), changed, "2026-01-01T00:00:03Z".into())
            .await
            .unwrap();
        assert_eq!(new, vec![r("b", "bad b")]);
        let stored: Vec<(String, String)> = store
            .rejected_rows()
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.rejection.key.unwrap(), s.at))
            .collect();
        assert_eq!(
            stored,
            vec![
                ("a".into(), "2026-01-01T00:00:01Z".into()),
                ("b".into(), "2026-01-01T00:00:03Z".into())
            ]
        );
        // Import rejections (another source) are not touched.
        store
            .import_desired(batch(), "f.csv".into(), now())
            .await
            .unwrap();
        store
            .replace_table_rejections(tables(), vec![], "t4".into())
            .await
            .unwrap();
        let left = store.rejected_rows().await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].source, "f.csv");
    }
}

/// Renaming a key with plain SQL (migration 0008's trigger): the merge base (fields and
/// numbers), the outbox entries and the payments naming the row move to the new key; a
/// payment's own outbox entry (keyed by its reference) does not; leftovers of an earlier
/// row of the new key give way.
#[tokio::test]
async fn a_renamed_key_keeps_its_base_outbox_and_payments() {
    for backend in crate::store::test_backends::backends().await {
        let store = crate::store::test_backends::on(&backend);
        store
            .import_desired(batch(), "f.csv".into(), now())
            .await
            .unwrap();
        let base: Fields = [(Field::Fullname, "Kovalenko Olena".to_string())].into();
        store
            .set_base("a".into(), base.clone(), now())
            .await
            .unwrap();
        // A leftover base row under the new name, from a deleted row.
        store
            .set_base(
                "z".into(),
                [(Field::Street, "old".to_string())].into(),
                now(),
            )
            .await
            .unwrap();
        let dn = DnKey {
            pbx_id: 292,
            dn: "2001".into(),
        };
        store
            .add_dn_base("a".into(), dn.clone(), now())
            .await
            .unwrap();
        let create = store
            .outbox_insert("a".into(), "create", None, "{}".into(), now())
            .await
            .unwrap();
        let payment = store
            .outbox_insert("a".into(), "payment", Some(7), "{}".into(), now())
            .await
            .unwrap();
        store
            .write(|c| {
                c.execute_batch(
                    "INSERT INTO desired_payments (reference, subscriber_key, amount, paymentday) \
                     VALUES ('PB-1', 'a', '10.00', '2025-05-01');
                     UPDATE desired_subscribers SET key = 'z' WHERE key = 'a';",
                )
                .map_err(StoreError::sql("renaming"))
            })
            .await
            .unwrap();
        let mb = store.merge_base().await.unwrap();
        assert!(!mb.fields.contains_key("a"), "{mb:?}");
        assert_eq!(mb.fields["z"][&Field::Fullname], "Kovalenko Olena");
        assert_eq!(mb.dns["z"], [dn].into());
        let keys: Vec<(i64, String)> = store
            .read(|c| {
                let mut q = c.prepare("SELECT id, key FROM outbox ORDER BY id").unwrap();
                let rows = q
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                Ok(rows)
            })
            .await
            .unwrap();
        assert_eq!(keys, [(create, "z".into()), (payment, "a".into())]);
        let payer: String = store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT subscriber_key FROM desired_payments WHERE reference = 'PB-1'",
                    [],
                    |r| r.get(0),
                )
                .unwrap())
            })
            .await
            .unwrap();
        assert_eq!(payer, "z");
        let dns: Vec<String> = store
            .read(|c| {
                let mut q = c
                    .prepare("SELECT dn FROM desired_dns WHERE key = 'z' ORDER BY dn")
                    .unwrap();
                let rows = q
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                Ok(rows)
            })
            .await
            .unwrap();
        assert_eq!(dns, ["2001", "2002"]);
    }
}

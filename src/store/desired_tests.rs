//! Desired-state storage tests on in-memory SQLite.

use super::*;
use crate::sync::import::{Format, parse};

const CSV: &str = "key,fullname,departmentid,subscribertype,ispublic,privilegediscount,dns\n\
    a,Kovalenko Olena,3,0,1,2.50,292/2001;292/2002\n\
    b,Bondar Ivan,3,1,,,\n\
    c,,3,0,,,\n";

fn now() -> String {
    "2025-05-20T10:00:00Z".into()
}

#[tokio::test]
async fn import_round_trips_and_reimport_changes_nothing() {
    let store = Store::open_in_memory().unwrap();
    let batch = parse(CSV, Format::Csv).unwrap();
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
    assert!(rejected[0].1.reason.starts_with("missing fullname"));
}

#[tokio::test]
async fn link_base_and_plan_inputs() {
    let store = Store::open_in_memory().unwrap();
    store
        .import_desired(parse(CSV, Format::Csv).unwrap(), "f.csv".into(), now())
        .await
        .unwrap();
    store.link_desired("a".into(), 77).await.unwrap();
    let base: Fields = [(Field::Fullname, "Kovalenko Olena".to_string())].into();
    store
        .set_base("a".into(), base.clone(), now())
        .await
        .unwrap();
    assert_eq!(store.merge_base().await.unwrap()["a"], base);
    let rows = store.desired_subscribers().await.unwrap();
    assert_eq!(rows[0].tariscope_id, Some(77));
    // A re-import without tariscope_id keeps the link.
    store
        .import_desired(parse(CSV, Format::Csv).unwrap(), "f.csv".into(), now())
        .await
        .unwrap();
    assert_eq!(
        store.desired_subscribers().await.unwrap()[0].tariscope_id,
        Some(77)
    );
    assert!(store.remote_for_plan().await.unwrap().is_empty());
}

//! Outbox tests on in-memory SQLite.

use super::*;

fn now() -> String {
    "2025-05-20T10:00:00Z".into()
}

#[tokio::test]
async fn outbox_state_machine() {
    for backend in crate::store::test_backends::backends().await {
        let store = crate::store::test_backends::on(&backend);
        let id = store
            .outbox_insert("k".into(), "create", None, "{}".into(), now())
            .await
            .unwrap();
        store
            .outbox_mark(id, OutboxState::Sent, true, None, None, None, now())
            .await
            .unwrap();
        let open = store.outbox_open().await.unwrap();
        assert_eq!((open[0].state, open[0].attempts), (OutboxState::Sent, 1));
        store
            .outbox_mark(
                id,
                OutboxState::Done,
                false,
                Some(9),
                None,
                Some("{\"id\":9}".into()),
                now(),
            )
            .await
            .unwrap();
        assert!(store.outbox_open().await.unwrap().is_empty());
        let latest = store
            .outbox_latest("k".into(), "create")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (latest.state, latest.subscriber_id),
            (OutboxState::Done, Some(9))
        );
        assert_eq!(
            store.outbox_in(&[OutboxState::Done]).await.unwrap().len(),
            1
        );
    }
}

#[tokio::test]
async fn conflicts_are_replaced_keeping_first_seen() {
    for backend in crate::store::test_backends::backends().await {
        let store = crate::store::test_backends::on(&backend);
        let c = |key: &str, reason: &str| Conflict {
            key: key.into(),
            id: Some(1),
            field: None,
            dn: None,
            base: None,
            local: None,
            remote: None,
            resolution: Resolution::Blocked,
            reason: reason.into(),
        };
        store
            .replace_conflicts(
                vec![c("a", "one"), c("b", "two")],
                "2026-01-01T00:00:01Z".into(),
            )
            .await
            .unwrap();
        store
            .replace_conflicts(vec![c("a", "one again")], "2026-01-01T00:00:02Z".into())
            .await
            .unwrap();
        let all = store.conflicts().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].reason.as_str(), all[0].first_seen_at.as_str()),
            ("one again", "2026-01-01T00:00:01Z")
        );
    }
}

use super::*;
use crate::model::payments::{PaymentRow, Target};

fn valid(reference: &str, payer: Payer) -> ValidPayment {
    ValidPayment {
        row: PaymentRow {
            reference: reference.into(),
            payer,
            amount: "370.00".parse().unwrap(),
            day: "2025-05-17".parse().unwrap(),
            kind: 3,
            bank: Some("PrivatBank".into()),
        },
        target: Target::Subscriber(1),
    }
}

#[tokio::test]
async fn an_import_inserts_new_references_and_never_overwrites() {
    for backend in crate::store::test_backends::backends().await {
        let store = crate::store::test_backends::on(&backend);
        let rows = vec![
            valid("a", Payer::Id(1)),
            valid("b", Payer::Account("ACC-1".into())),
            valid("c", Payer::Key("crm-1".into())),
        ];
        let bad = Rejection {
            row: 5,
            key: Some("d".into()),
            reason: "payment d: bad".into(),
            ..Rejection::default()
        };
        let c = store
            .import_payments(
                rows,
                2,
                vec![bad],
                "f.csv (payments)".into(),
                "2026-01-01T00:00:00Z".into(),
            )
            .await
            .unwrap();
        assert_eq!((c.inserted, c.unchanged, c.rejected), (3, 2, 1));
        let again = store
            .import_payments(
                vec![valid("a", Payer::Id(9))],
                0,
                vec![],
                "f.csv (payments)".into(),
                "2026-01-01T00:00:00Z".into(),
            )
            .await
            .unwrap();
        assert_eq!((again.inserted, again.unchanged, again.rejected), (0, 1, 0));
        let rows = store.desired_payment_rows().await.unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0].columns[0],
            ("subscriberid".into(), crate::model::Cell::Int(1))
        );
        assert_eq!(
            rows[0].columns[3],
            ("amount".into(), crate::model::Cell::Text("370.00".into()))
        );
        assert_eq!(
            rows[1].columns[1].1,
            crate::model::Cell::Text("ACC-1".into())
        );
        assert!(
            store.rejected_rows().await.unwrap().is_empty(),
            "the second import replaced the file's rejections"
        );
    }
}

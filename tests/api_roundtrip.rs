//! Property test: for random emulator datasets, wire variants and formats, the client
//! decodes exactly what the emulator holds (every subscriber field, DNs, payments,
//! charges).

mod api_support;

use api_support::*;
use proptest::prelude::*;
use tariscope_sync::api::Format;
use tariscope_sync::model::{Code, DnAssignment, PaymentType, Subscriber, SubscriberType};
use tariscope_sync::sim::{
    DatasetConfig, DateStyle, Envelope, KeyCase, SimSubscriber, WireVariant,
};

fn expected(s: &SimSubscriber) -> Subscriber {
    Subscriber {
        id: s.id,
        fullname: Some(s.fullname.clone()),
        street: s.street.clone(),
        house: s.house.clone(),
        flat: s.flat.clone(),
        email: s.email.clone(),
        description: s.description.clone(),
        authcode: s.authcode.clone(),
        ispublic: s.ispublic,
        subscriber_type: s.abonenttype.map(SubscriberType::from_code),
        edrpou: s.edrpou.clone(),
        zipcode: s.zipcode.clone(),
        personalcode: s.personalcode.clone(),
        contract_number: s.contract_number.clone(),
        information: s.information.clone(),
        privilegeinfo: s.privilegeinfo.clone(),
        area: s.area.clone(),
        contractdate: s.contractdate,
        building: s.building.clone(),
        floornumber: s.floornumber.clone(),
        account_number: s.account_number.clone(),
        gender: s.gender.map(Code),
        birthday: s.birthday,
        bankaccount: s.bankaccount.clone(),
        bank_code: s.bankmfo.clone(),
        taxcode: s.taxcode.clone(),
        deliverytype: s.deliverytype.map(Code),
        privilegediscount: s.privilegediscount,
        department_id: Some(s.department_id),
        node_id: Some(s.node_id),
        rateplan_id: s.rateplan_id,
        connectiondate: s.connectiondate,
        bankname: s.bankname.clone(),
        dns: Some(
            s.dns
                .iter()
                .map(|d| DnAssignment {
                    id: Some(d.id),
                    subscriber_id: s.id,
                    pbx_id: Some(d.pbx_id),
                    dn: d.dn.clone(),
                    from_date: Some(d.from_date),
                    description: d.description.clone(),
                })
                .collect(),
        ),
    }
}

fn variant() -> impl Strategy<Value = WireVariant> {
    (0..3u8, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(k, n, d, e)| WireVariant {
        key_case: [KeyCase::Documented, KeyCase::Lower, KeyCase::Pascal][k as usize],
        numbers_as_strings: n,
        dates: if d { DateStyle::DotNet } else { DateStyle::Iso },
        envelope: if e { Envelope::Wrapped } else { Envelope::Bare },
        partial_lists: false,
        ..WireVariant::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn client_decodes_exactly_what_the_emulator_holds(seed in any::<u64>(), wire in variant(), xml in any::<bool>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut config = sim_config(wire);
            config.dataset = DatasetConfig { seed, subscribers: 15, days: 10, ..small_dataset() };
            let sim = start(config).await;
            let snap = sim.state();
            let c = client(&sim, if xml { Format::Xml } else { Format::Json });
            let mut seen = 0;
            for node in &snap.nodes {
                for got in c.subscribers_by_node(node.id).await.unwrap() {
                    let want = expected(snap.subscriber(got.id).unwrap());
                    assert_eq!(got, want, "seed {seed}, {wire:?}, xml {xml}");
                    seen += 1;
                }
            }
            assert_eq!(seen, snap.subscribers.len());
            let s = &snap.subscribers[(seed % snap.subscribers.len() as u64) as usize];
            let payments = c.account_payments(s.id, snap.start_date, snap.end_date).await.unwrap();
            let want: Vec<_> = snap.payments.iter().filter(|p| p.subscriber_id == s.id).collect();
            assert_eq!(payments.len(), want.len());
            for (g, w) in payments.iter().zip(want) {
                assert_eq!(
                    (g.payment_id, g.payment_day, g.amount, g.payment_type, g.bank.clone()),
                    (w.payment_id, Some(w.payment_day), Some(w.amount), Some(PaymentType::from_code(w.payment_type)), w.bank.clone())
                );
            }
            let charges = c.account_charges(s.id, snap.start_date, snap.end_date).await.unwrap();
            let want: Vec<_> = snap.charges.iter().filter(|ch| ch.subscriber_id == s.id).collect();
            assert_eq!(charges.len(), want.len());
            for (g, w) in charges.iter().zip(want) {
                assert_eq!(
                    (g.id, g.recdate, g.fromdate, g.todate, g.servicename.clone(), g.charge, g.numberofservices),
                    (Some(w.id), Some(w.recdate), Some(w.fromdate), Some(w.todate), Some(w.servicename.clone()), Some(w.amount), Some(w.numberofservices.into()))
                );
            }
            sim.shutdown().await;
        });
    }
}

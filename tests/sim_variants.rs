//! The wire variants: key casing, numbers as strings, .NET dates, wrapped lists,
//! partial lists, records without DNs, repeated dnadd accepted, in JSON and XML; the switch
//! that accepts repeated account numbers.

mod sim_support;

use serde_json::{Value, json};
use sim_support::*;
use tariscope_sync::sim::{DateStyle, Envelope, KeyCase, SimConfig, SimHandle, WireVariant};

async fn with(wire: WireVariant) -> (SimHandle, Api) {
    let sim = start(SimConfig { wire, ..config() }).await;
    let api = Api::demo(&sim).await;
    (sim, api)
}

const SUMMARY: &str = "/api/accounts.summary/?id=1234&year=2025&month=5&day=20";

#[tokio::test]
async fn key_casing() {
    let cases = [
        (
            KeyCase::Documented,
            ["id", "fullname", "House", "Flat", "accountId"],
            "start_debt",
        ),
        (
            KeyCase::Lower,
            ["id", "fullname", "house", "flat", "accountid"],
            "start_debt",
        ),
        (
            KeyCase::Pascal,
            ["Id", "Fullname", "House", "Flat", "AccountId"],
            "Start_debt",
        ),
    ];
    for (case, record_keys, debt) in cases {
        let (sim, api) = with(WireVariant {
            key_case: case,
            ..WireVariant::default()
        })
        .await;
        let v = api.get("/api/subscriber/get/?id=1234").await.json();
        for k in record_keys {
            assert!(v.get(k).is_some(), "{case:?}: {k} in {v}");
        }
        let dns = &v[if case == KeyCase::Pascal {
            "Dns"
        } else {
            "dns"
        }];
        assert!(dns.is_array(), "{case:?}: nested keys too");
        let key0 = if case == KeyCase::Pascal {
            "Pbxid"
        } else {
            "pbxid"
        };
        assert!(dns[0].get(key0).is_some(), "{case:?}: {}", dns[0]);
        assert!(
            api.get(SUMMARY).await.json().get(debt).is_some(),
            "{case:?}"
        );
        let xml = api.get("/api/subscriber/get/xml/?id=1234").await.body;
        assert!(
            xml.contains(&format!("<{}>", record_keys[2])),
            "{case:?}: {xml}"
        );
        // the login answer follows the casing; error bodies do not change
        let login = api
            .post_json("/api/auth", json!({"username": "demo", "password": "demo"}))
            .await
            .json();
        assert!(
            login
                .get(if case == KeyCase::Pascal {
                    "Token"
                } else {
                    "token"
                })
                .is_some(),
            "{login}"
        );
        assert_eq!(
            api.get("/api/subscriber/get/?id=1").await.code(),
            "not_found"
        );
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn numbers_as_strings() {
    let (sim, api) = with(WireVariant {
        numbers_as_strings: true,
        ..WireVariant::default()
    })
    .await;
    let v = api.get("/api/subscriber/get/?id=1234").await.json();
    assert_eq!(v["id"], json!("1234"));
    assert!(v["abonenttype"].is_string());
    assert!(
        matches!(v["ispublic"].as_str(), Some("0" | "1")),
        "{}",
        v["ispublic"]
    );
    assert!(v["departmentid"].is_string());
    assert!(v["dns"][0]["pbxid"].is_string());
    let s = api.get(SUMMARY).await.json();
    for k in ["start_debt", "end_debt", "charge", "payment"] {
        let text = s[k].as_str().unwrap_or_else(|| panic!("{k} is a string"));
        assert_eq!(text.split_once('.').unwrap().1.len(), 2, "{k} = {text}");
    }
    let r = api
        .post_json(
            "/api/accounts/payment/",
            json!({"id": "1234", "paymentday": "2025-05-20", "payment": "370.00"}),
        )
        .await
        .json();
    assert_eq!(r["subscriberid"], json!("1234"));
    assert!(r["paymentid"].is_string());
    let p = api
        .get(&format!(
            "/api/accounts/payments/?id=1234&paymentid={}",
            r["paymentid"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(p[0]["payment"], json!("370.00"));
    let t = api.get("/api/tariffs/details/?rateid=101").await.json();
    assert!(matches!(t[0]["roundfirstminute"].as_str(), Some("0" | "1")));
    sim.shutdown().await;
}

#[tokio::test]
async fn dotnet_dates() {
    let (sim, api) = with(WireVariant {
        dates: DateStyle::DotNet,
        ..WireVariant::default()
    })
    .await;
    let s = api.get(SUMMARY).await.json();
    assert_eq!(s["date"], json!("2025-05-20T00:00:00"));
    let v = api.get("/api/subscriber/get/?id=1234").await.json();
    assert!(v["contractdate"].as_str().unwrap().ends_with("T00:00:00"));
    assert!(
        v["dns"][0]["fromdate"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00")
    );
    let c = api
        .get("/api/accounts/charges/?id=1234&fromdate=2025-04-01&todate=2025-05-31")
        .await
        .json();
    assert!(c[0]["recdate"].as_str().unwrap().ends_with("T00:00:00"));
    let xml = api
        .get("/api/accounts.summary/xml/?id=1234&year=2025&month=5&day=20")
        .await
        .body;
    assert!(xml.contains("<date>2025-05-20T00:00:00</date>"), "{xml}");
    // requests still take yyyy-mm-dd
    let r = api
        .post_json(
            "/api/accounts/payment/",
            json!({"id": 1234, "paymentday": "2025-05-20", "payment": 1}),
        )
        .await
        .json();
    assert_eq!(r["paymentday"], json!("2025-05-20T00:00:00"));
    sim.shutdown().await;
}

#[tokio::test]
async fn wrapped_lists() {
    let (sim, api) = with(WireVariant {
        envelope: Envelope::Wrapped,
        ..WireVariant::default()
    })
    .await;
    let v = api.get("/api/subscriber/list/node/?id=1").await.json();
    let n = sim
        .state()
        .subscribers
        .iter()
        .filter(|s| s.node_id == 1)
        .count();
    assert_eq!(v["count"], json!(n));
    assert_eq!(v["items"].as_array().unwrap().len(), n);
    let empty = api
        .get("/api/accounts/payments/?id=1234&paymentid=1")
        .await
        .json();
    assert_eq!(empty, json!({"count": 0, "items": []}));
    let claims = api.get("/api/claims/").await.json();
    assert_eq!(claims["count"], json!(22));
    // single records stay bare, nested lists stay arrays
    let one = api.get("/api/subscriber/get/?id=1234").await.json();
    assert_eq!(one["id"], json!(1234));
    assert!(one["dns"].is_array());
    let xml = api.get("/api/services/list/xml/").await.body;
    assert!(
        xml.contains("<response><count>8</count><items><item>"),
        "{xml}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn partial_lists() {
    let (sim, api) = with(WireVariant {
        partial_lists: true,
        ..WireVariant::default()
    })
    .await;
    for path in [
        "/api/subscriber/list/node/?id=2",
        "/api/subscriber/list/department/?id=1",
    ] {
        let v = api.get(path).await.json();
        for item in v.as_array().unwrap() {
            assert_eq!(keys(item), ["fullname", "id"], "{path}");
        }
    }
    // subscriber.get still returns the full record
    let full = api.get("/api/subscriber/get/?id=1234").await.json();
    assert_eq!(keys(&full).len(), RECORD_FIELDS.len());
    sim.shutdown().await;
}

#[tokio::test]
async fn variants_combine() {
    let wire = WireVariant {
        key_case: KeyCase::Lower,
        numbers_as_strings: true,
        dates: DateStyle::DotNet,
        envelope: Envelope::Wrapped,
        partial_lists: false,
        system_fields: tariscope_sync::sim::SystemFields::DotNet,
        ..WireVariant::default()
    };
    let (sim, api) = with(wire).await;
    let v = api
        .get("/api/accounts/charges/?id=1234&fromdate=2025-04-01&todate=2025-05-31")
        .await
        .json();
    let first: &Value = &v["items"][0];
    assert!(first["id"].is_string());
    assert!(first["recdate"].as_str().unwrap().ends_with("T00:00:00"));
    assert_eq!(
        v["count"].as_str().unwrap().parse::<usize>().unwrap(),
        v["items"].as_array().unwrap().len()
    );
    let rec = api.get("/api/subscriber/get/?id=1234").await.json();
    assert!(rec["accountid"].is_string() && rec.get("accountId").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn records_without_dns_and_repeated_dnadd() {
    for (without_dns, duplicates) in [(false, false), (true, true)] {
        let (sim, api) = with(WireVariant {
            records_without_dns: without_dns,
            accept_duplicate_dns: duplicates,
            ..WireVariant::default()
        })
        .await;
        let get = api.get("/api/subscriber/get/?id=1234").await.json();
        let node = api.get("/api/subscriber/list/node/?id=1").await.json();
        let dep = api
            .get("/api/subscriber/list/department/?id=1")
            .await
            .json();
        let xml = api.get("/api/subscriber/get/xml/?id=1234").await.body;
        for record in [&get, &node[0], &dep[0]] {
            assert_eq!(record.get("dns").is_none(), without_dns, "{record}");
        }
        assert_eq!(!xml.contains("<dns"), without_dns, "{xml}");
        // The same number twice: 409, or a second assignment.
        let held = sim.state().subscriber(1234).unwrap().dns[0].clone();
        let body = json!({"SubscriberId": 1234, "DN": held.dn, "pbxid": held.pbx_id});
        let again = api.post_json("/api/subscriber/dnadd/", body).await;
        let expected = if duplicates { 200 } else { 409 };
        assert_eq!(again.status, expected, "{}", again.body);
        let count = sim
            .state()
            .subscribers
            .iter()
            .flat_map(|s| &s.dns)
            .filter(|d| d.dn == held.dn && d.pbx_id == held.pbx_id)
            .count();
        assert_eq!(count, if duplicates { 2 } else { 1 });
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn repeated_account_numbers_refused_or_accepted_by_the_switch() {
    let (sim, api) = with(WireVariant::default()).await;
    let ctl = Api::anon(&sim, None);
    let dep = sim.state().departments[0].id;
    let create = |acc: &str| json!({"fullname": "Savchenko Petro", "departmentid": dep, "subscribertype": 0, "accountnumber": acc});
    assert_eq!(
        api.post_json("/api/subscriber/create/", create("DUP-1"))
            .await
            .status,
        200
    );
    let again = api
        .post_json("/api/subscriber/create/", create("DUP-1"))
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    let on = ctl
        .request(
            reqwest::Method::PUT,
            "/_sim/accept-duplicate-accounts",
            Some(json!(true)),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.body);
    let again = api
        .post_json("/api/subscriber/create/", create("DUP-1"))
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    sim.set_accept_duplicate_accounts(false);
    let again = api
        .post_json("/api/subscriber/create/", create("DUP-1"))
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    let held = sim
        .state()
        .subscribers
        .iter()
        .filter(|s| s.account_number.as_deref() == Some("DUP-1"))
        .count();
    assert_eq!(held, 2);
}

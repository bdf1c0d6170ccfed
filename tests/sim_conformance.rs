//! Conformance of the emulator to `docs/wire-profile.md`: every method in JSON and XML,
//! documented field names, both path forms, the guide's documented examples, and the
//! error table.

mod sim_support;

use serde_json::{Value, json};
use sim_support::*;
use tariscope_sync::sim::{DatasetConfig, SimConfig, SimUser};

/// (method, verb, path, query or JSON body, documented keys of the object / list item).
fn method_table(
    id: i64,
    rate: i64,
) -> Vec<(&'static str, &'static str, String, Value, Vec<&'static str>)> {
    let q = |s: String| Value::String(s);
    vec![
        (
            "subscriber.get",
            "GET",
            "/api/subscriber/get/".into(),
            q(format!("id={id}")),
            RECORD_FIELDS.to_vec(),
        ),
        (
            "subscriber.list.department",
            "GET",
            "/api/subscriber/list/department/".into(),
            q("id=1".into()),
            RECORD_FIELDS.to_vec(),
        ),
        (
            "subscriber.list.node",
            "GET",
            "/api/subscriber/list/node/".into(),
            q("id=1".into()),
            RECORD_FIELDS.to_vec(),
        ),
        (
            "accounts.summary",
            "GET",
            "/api/accounts.summary/".into(),
            q(format!("id={id}&year=2025&month=5&day=20")),
            vec!["date", "start_debt", "end_debt", "charge", "payment"],
        ),
        (
            "accounts.charges",
            "GET",
            "/api/accounts/charges/".into(),
            q(format!("id={id}&fromdate=2025-04-01&todate=2025-05-31")),
            vec![
                "id",
                "recdate",
                "fromdate",
                "todate",
                "servicename",
                "charge",
                "numberofservices",
            ],
        ),
        (
            "accounts.payments",
            "GET",
            "/api/accounts/payments/".into(),
            q(format!(
                "id={id}&fromdate=2025-04-01&todate=2025-05-31&paymentid=0"
            )),
            vec![
                "subscriberid",
                "paymentid",
                "paymentday",
                "payment",
                "paymenttype",
                "bank",
            ],
        ),
        (
            "tariffs.plans",
            "GET",
            "/api/tariffs/plans/".into(),
            q(String::new()),
            vec!["id", "name", "description", "currencyid", "active"],
        ),
        (
            "tariffs.details",
            "GET",
            "/api/tariffs/details/".into(),
            q("providerid=0&planid=0&rateid=0&direction=all".into()),
            vec![
                "id",
                "name",
                "providerid",
                "parametersid",
                "planid",
                "activedate",
                "currencyid",
                "value",
                "roundto",
                "freeseconds",
                "substractseconds",
                "roundcostto",
                "rounddurationdown",
                "roundcostdown",
                "roundfirstminute",
                "noaccount",
                "accountdescription",
                "accountdns",
                "minimumduration",
                "stages",
                "minimumcost",
                "direction",
            ],
        ),
        (
            "tariffs.time",
            "GET",
            "/api/tariffs/time/".into(),
            q(format!("rateid={rate}")),
            vec!["rateid", "fromhour", "tohour", "value"],
        ),
        (
            "services.list",
            "GET",
            "/api/services/list/".into(),
            q(String::new()),
            vec!["id", "name", "price", "unit"],
        ),
        (
            "tariscope.version",
            "GET",
            "/api/tariscope/version/".into(),
            q(String::new()),
            vec!["version"],
        ),
        (
            "tariscope.database",
            "GET",
            "/api/tariscope/database/".into(),
            q(String::new()),
            vec!["database"],
        ),
        (
            "tariscope.build",
            "GET",
            "/api/tariscope/build/".into(),
            q(String::new()),
            vec!["build"],
        ),
        (
            "tariscope.serial",
            "GET",
            "/api/tariscope/serial/".into(),
            q(String::new()),
            vec!["serial"],
        ),
        (
            "tariscope.edition",
            "GET",
            "/api/tariscope/edition/".into(),
            q(String::new()),
            vec!["edition"],
        ),
        (
            "tariscope.summary",
            "GET",
            "/api/tariscope/summary/".into(),
            q(String::new()),
            vec![
                "version",
                "database",
                "build",
                "serial",
                "edition",
                "subscribers",
                "nodes",
            ],
        ),
        (
            "claims",
            "GET",
            "/api/claims/".into(),
            q(String::new()),
            vec![],
        ),
        (
            "sql",
            "POST",
            "/api/sql/".into(),
            json!({"query": "SELECT id, fullname FROM subscribers ORDER BY id LIMIT 3"}),
            vec!["columns", "rows"],
        ),
        (
            "subscriber.update",
            "POST",
            "/api/subscriber/update/".into(),
            json!({"id": id, "street": "vul. Testova"}),
            RECORD_FIELDS.to_vec(),
        ),
        (
            "subscriber.create",
            "POST",
            "/api/subscriber/create/".into(),
            json!({"fullname": "Test Subscriber", "departmentid": 1}),
            vec!["id", "accountnumber", "fullname"],
        ),
        (
            "subscriber.dnadd",
            "POST",
            "/api/subscriber/dnadd/".into(),
            json!({"SubscriberId": id, "DN": "1000001", "pbxid": 291}),
            vec!["id", "subscriberid", "pbxid", "dn"],
        ),
        (
            "accounts.payment",
            "POST",
            "/api/accounts/payment/".into(),
            json!({"id": id, "paymentday": "2025-05-17", "payment": "370.00", "paymenttype": 3, "bank": "PrivatBank"}),
            vec!["subscriberid", "paymentid", "paymentday"],
        ),
    ]
}

fn xml_path(path: &str) -> String {
    format!("{}xml/", path)
}

async fn call(api: &Api, verb: &str, path: &str, arg: &Value) -> Resp {
    if verb == "GET" {
        let q = arg.as_str().unwrap();
        api.get(&if q.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{q}")
        })
        .await
    } else {
        api.post_json(path, arg.clone()).await
    }
}

#[tokio::test]
async fn every_method_json_and_xml_has_documented_fields() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    let state = sim.state();
    // a subscriber on node 1 (so PBX 291 is theirs) with charges and payments
    let id = state
        .subscribers
        .iter()
        .find(|s| s.node_id == 1 && state.payments.iter().any(|p| p.subscriber_id == s.id))
        .unwrap()
        .id;
    let rate = state.tariffs[0].id;
    let mut dn = 1_000_001;
    for (method, verb, path, arg, fields) in method_table(id, rate) {
        // JSON first; the XML answer of the same call is compared with it.
        let mut json_answer = None;
        for xml in [false, true] {
            let mut arg = arg.clone();
            if method == "subscriber.dnadd" {
                arg["DN"] = json!(dn.to_string());
                dn += 1;
            }
            let p = if xml { xml_path(&path) } else { path.clone() };
            let r = call(&api, verb, &p, &arg).await;
            assert_eq!(r.status, 200, "{method} {p}: {}", r.body);
            if xml {
                assert!(
                    r.content_type.starts_with("application/xml"),
                    "{method}: {}",
                    r.content_type
                );
                assert!(
                    r.body.starts_with("<?xml") && r.body.contains("<response>"),
                    "{method}: {}",
                    r.body
                );
                let json_answer = json_answer.as_ref().expect("the JSON call came first");
                let compared = xml_has_every_json_field(method, json_answer, &r.body);
                assert!(
                    compared > 0,
                    "{method}: nothing was compared between JSON and XML"
                );
                continue;
            }
            assert!(
                r.content_type.starts_with("application/json"),
                "{method}: {}",
                r.content_type
            );
            let v = r.json();
            json_answer = Some(v.clone());
            let obj = match &v {
                Value::Array(items) => {
                    assert!(!items.is_empty(), "{method} returned an empty list");
                    items[0].clone()
                }
                other => other.clone(),
            };
            if method == "claims" {
                assert!(v.as_array().unwrap().iter().any(|m| m == "subscriber.get"));
                continue;
            }
            let got = keys(&obj);
            for f in &fields {
                assert!(
                    got.contains(&f.to_string()),
                    "{method}: missing {f} in {obj}"
                );
            }
            assert_eq!(
                got.len(),
                fields.len(),
                "{method}: unexpected fields {got:?}"
            );
        }
    }
}

/// Asserts that the XML answer has an element for every non-null field of the JSON answer's
/// (first) record, or an `<item>` for every value of a list of plain values; returns how
/// many were compared (the caller requires more than none: no method escapes the check).
/// Writes answer two different records (the JSON and the XML call each wrote one): their
/// field names are compared, not their values.
fn xml_has_every_json_field(method: &str, json_answer: &Value, xml: &str) -> usize {
    let record = match json_answer {
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            for item in items {
                let text = item
                    .as_str()
                    .map_or_else(|| item.to_string(), str::to_owned);
                assert!(
                    xml.contains(&format!("<item>{text}</item>")),
                    "{method} XML lacks <item>{text}</item>: {xml}"
                );
            }
            return items.len();
        }
        Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    let mut compared = 0;
    for (k, val) in record.as_object().into_iter().flatten() {
        if !val.is_null() {
            assert!(
                xml.contains(&format!("<{k}>")),
                "{method} XML lacks <{k}>: {xml}"
            );
            compared += 1;
        }
    }
    compared
}

#[tokio::test]
async fn record_fields_are_in_documented_order_with_documented_types() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    let r = api.get("/api/subscriber/get/?id=1234").await;
    assert_eq!(r.status, 200);
    let mut last = 0;
    for f in RECORD_FIELDS {
        let pos = r
            .body
            .find(&format!("\"{f}\":"))
            .unwrap_or_else(|| panic!("{f} missing"));
        assert!(pos >= last, "{f} out of order");
        last = pos;
    }
    let v = r.json();
    let s = sim.state().subscriber(1234).unwrap().clone();
    assert_eq!(v["id"], json!(1234));
    assert_eq!(v["fullname"], json!(s.fullname));
    assert_eq!(v["accountId"], json!(s.account_number));
    assert_eq!(v["contractid"], json!(s.contract_number));
    assert_eq!(v["code"], json!(s.edrpou));
    assert!(v["ispublic"].is_boolean());
    assert!(v["abonenttype"].is_i64());
    assert_eq!(
        v["contractdate"],
        json!(s.contractdate.unwrap().to_string())
    );
    let dns = v["dns"].as_array().unwrap();
    assert_eq!(dns.len(), s.dns.len());
    assert_eq!(
        keys(&dns[0]),
        ["description", "dn", "fromdate", "id", "pbxid"]
    );
    assert!(dns[0]["dn"].is_string());
    // by e-mail, case-insensitively
    let email = s.email.clone().unwrap().to_uppercase();
    let by_mail = api
        .get(&format!("/api/subscriber/get/?email={email}"))
        .await;
    assert_eq!(by_mail.json()["id"], json!(1234));
    // money has two decimals on the wire
    let sum = api
        .get("/api/accounts.summary/?id=1234&year=2025&month=5&day=20")
        .await;
    let re = regex_two_decimals(&sum.body, "start_debt");
    assert!(re, "{}", sum.body);
    sim.shutdown().await;
}

fn regex_two_decimals(body: &str, key: &str) -> bool {
    let Some(pos) = body.find(&format!("\"{key}\":")) else {
        return false;
    };
    let rest = &body[pos + key.len() + 3..];
    let num: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    num.split_once('.').is_some_and(|(_, d)| d.len() == 2)
}

/// The guide's documented examples, reproduced on a dataset large enough to hold their ids.
#[tokio::test]
async fn documented_examples_reproduce() {
    let sim = start(SimConfig {
        dataset: DatasetConfig {
            nodes: 1,
            subscribers: 6200,
            days: 61,
            end_date: chrono::NaiveDate::from_ymd_opt(2023, 5, 31),
            ..DatasetConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let api = Api::demo(&sim).await;
    // S3: subscriber 2928; S1: the XML form for 1234
    assert_eq!(
        api.get("/api/subscriber/get/?id=2928").await.json()["id"],
        json!(2928)
    );
    let xml = api.get("/api/subscriber/get/xml/?id=1234").await;
    assert!(xml.body.contains("<id>1234</id>"), "{}", xml.body);
    // S6: balance of 1234 on 20 May (in 2023: the dataset's window)
    let r = api
        .get("/api/accounts.summary/?id=1234&year=2023&month=5&day=20")
        .await;
    let v = r.json();
    let (start_debt, end_debt, charge, payment) = sim
        .state()
        .summary(1234, chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap());
    assert_eq!(v["date"], json!("2023-05-20"));
    for (k, want) in [
        ("start_debt", start_debt),
        ("end_debt", end_debt),
        ("charge", charge),
        ("payment", payment),
    ] {
        assert!(v[k].is_number(), "{k}");
        assert!(
            r.body.contains(&format!("\"{k}\":{want:.2}")),
            "{k} = {want:.2}: {}",
            r.body
        );
    }
    // S7: charges of 6169 for May 2023
    let r = api
        .get("/api/accounts/charges/?id=6169&fromdate=2023-05-01&todate=2023-05-31")
        .await;
    let list = r.json();
    let want = sim
        .state()
        .charges
        .iter()
        .filter(|c| c.subscriber_id == 6169 && c.recdate.format("%Y-%m").to_string() == "2023-05")
        .count();
    assert_eq!(list.as_array().unwrap().len(), want);
    assert!(want > 0);
    // S8: 6193 pays 370.00 on 2023-05-17 via PrivatBank, to the account
    let r = api
        .post_json("/api/accounts/payment/", json!({"id": 6193, "paymentday": "2023-05-17", "payment": 370.00, "paymenttype": 3, "bank": "PrivatBank"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let paid = r.json();
    assert_eq!(keys(&paid), ["paymentday", "paymentid", "subscriberid"]);
    assert_eq!(paid["subscriberid"], json!(6193));
    assert_eq!(paid["paymentday"], json!("2023-05-17"));
    // S9 (with the guide's own typo `paymenttid`, which is simply ignored) and the id check
    let r = api
        .get("/api/accounts/payments/?id=6169&fromdate=2023-04-01&todate=2023-05-31&paymenttid=0")
        .await;
    let want = sim
        .state()
        .payments
        .iter()
        .filter(|p| p.subscriber_id == 6169)
        .count();
    assert_eq!(r.json().as_array().unwrap().len(), want);
    let pid = paid["paymentid"].as_i64().unwrap();
    let r = api
        .get(&format!(
            "/api/accounts/payments/?id=6193&paymentid={pid}&fromdate=2000-01-01&todate=2000-01-01"
        ))
        .await;
    let one = r.json();
    assert_eq!(
        one.as_array().unwrap().len(),
        1,
        "dates are ignored with a paymentid"
    );
    assert!(r.body.contains("\"payment\":370.00"), "{}", r.body);
    assert_eq!(one[0]["bank"], json!("PrivatBank"));
    let r = api.get("/api/accounts/payments/?id=6193&paymentid=1").await;
    assert_eq!(r.json(), json!([]), "an unknown paymentid is an empty list");
    // S4: create the legal entity "JSC ABC"
    let r = api
        .post_json(
            "/api/subscriber/create/",
            json!({"fullname": "JSC ABC", "departmentid": 1, "subscribertype": 1, "connectiondate": "2023-06-02",
                   "contactnumber": "247-23", "contractdate": "2023-06-01", "edrpou": "55667788", "taxcode": "123456789",
                   "bankcode": "325365", "bankname": "Kredobank"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let created = r.json();
    let new_id = created["id"].as_i64().unwrap();
    assert_eq!(
        created["accountnumber"],
        json!(new_id.to_string()),
        "generated account number = id"
    );
    assert_eq!(created["fullname"], json!("JSC ABC"));
    let rec = api
        .get(&format!("/api/subscriber/get/?id={new_id}"))
        .await
        .json();
    assert_eq!(rec["code"], json!("55667788"));
    assert_eq!(rec["contractid"], json!("247-23"));
    assert_eq!(rec["bankmfo"], json!("325365"));
    assert_eq!(rec["abonenttype"], json!(1));
    assert_eq!(rec["accountId"], json!(new_id.to_string()));
    // S5: number 2001 to subscriber 7334 from 2023-06-02 on PBX 292
    let r = api
        .post_json(
            "/api/subscriber/dnadd/",
            json!({"SubscriberId": 7334, "DN": "2001", "fromdate": "2023-06-02", "pbxid": 292}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(keys(&v), ["dn", "id", "pbxid", "subscriberid"]);
    assert_eq!(
        (
            v["subscriberid"].clone(),
            v["pbxid"].clone(),
            v["dn"].clone()
        ),
        (json!(7334), json!(292), json!("2001"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn path_forms_and_trailing_slashes() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    for path in [
        "/api/subscriber/get/?id=1234",
        "/api/subscriber/get?id=1234",
        "/api/subscriber/get/xml/?id=1234",
        "/api/subscriber/get/xml?id=1234",
        "/api/accounts.summary/?id=1234&year=2025&month=5&day=20",
        "/api/accounts.summary?id=1234&year=2025&month=5&day=20",
        "/api/accounts/summary/?id=1234&year=2025&month=5&day=20",
        "/api/account.summary/?id=1234&year=2025&month=5&day=20",
        "/api/accounts.summary/xml/?id=1234&year=2025&month=5&day=20",
        "/api/tariscope/version",
        "/api/claims",
    ] {
        assert_eq!(api.get(path).await.status, 200, "{path}");
    }
    for path in ["/api/auth", "/api/auth/", "/api/auth/xml", "/api/auth/xml/"] {
        let r = api
            .post_json(path, json!({"username": "demo", "password": "demo"}))
            .await;
        assert_eq!(r.status, 200, "{path}");
    }
    let xml = api
        .post_json(
            "/api/auth/xml",
            json!({"username": "demo", "password": "demo"}),
        )
        .await;
    assert!(xml.body.contains("<response><token>"), "{}", xml.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn post_bodies_as_json_form_or_query_with_any_parameter_casing() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    let r = api
        .post_form(
            "/api/accounts/payment/",
            &[
                ("ID", "1234"),
                ("PaymentDay", "2025-05-20"),
                ("payment", "10.5"),
                ("paymenttype", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .post_json(
            "/api/accounts/payment/?id=1234&paymentday=2025-05-21&payment=1",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.post_json("/api/subscriber/dnadd/", json!({"subscriberid": 1234, "dn": "+380441234567", "PBXID": sim.state().subscriber(1234).unwrap().dns[0].pbx_id})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn error_table() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    let holder = sim.state().subscriber(1234).unwrap().clone();
    let taken = holder.dns[0].clone();
    let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "GET",
            "/api/subscriber/get/?id=999999",
            json!(null),
            404,
            "not_found",
        ),
        (
            "GET",
            "/api/subscriber/get/?email=nobody@example.com",
            json!(null),
            404,
            "not_found",
        ),
        (
            "GET",
            "/api/subscriber/get/?id=abc",
            json!(null),
            400,
            "invalid_parameter",
        ),
        (
            "GET",
            "/api/subscriber/get/",
            json!(null),
            400,
            "invalid_parameter",
        ),
        (
            "GET",
            "/api/subscriber/list/department/?id=9999",
            json!(null),
            404,
            "not_found",
        ),
        (
            "GET",
            "/api/subscriber/list/node/?id=9999",
            json!(null),
            404,
            "not_found",
        ),
        (
            "GET",
            "/api/accounts.summary/?id=1234&year=2025&month=2&day=30",
            json!(null),
            400,
            "invalid_parameter",
        ),
        (
            "GET",
            "/api/accounts.summary/?id=999999&year=2025&month=2&day=3",
            json!(null),
            404,
            "not_found",
        ),
        (
            "GET",
            "/api/accounts/charges/?id=1234&fromdate=2025-05-01&todate=31.05.2025",
            json!(null),
            400,
            "invalid_parameter",
        ),
        (
            "GET",
            "/api/accounts/payments/?id=1234&fromdate=2025-05-31&todate=2025-05-01",
            json!(null),
            400,
            "invalid_parameter",
        ),
        (
            "GET",
            "/api/tariffs/details/?direction=sideways",
            json!(null),
            400,
            "invalid_parameter",
        ),
        ("GET", "/api/no/such/method/", json!(null), 404, "not_found"),
        (
            "POST",
            "/api/subscriber/get/?id=1234",
            json!({}),
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            "/api/subscriber/create/",
            json!(null),
            405,
            "method_not_allowed",
        ),
        (
            "POST",
            "/api/subscriber/create/",
            json!({"departmentid": 1}),
            400,
            "invalid_parameter",
        ),
        (
            "POST",
            "/api/subscriber/create/",
            json!({"fullname": "X", "departmentid": 999}),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/subscriber/create/",
            json!({"fullname": "X", "departmentid": 1, "subscribertype": 9}),
            400,
            "invalid_parameter",
        ),
        (
            "POST",
            "/api/subscriber/create/",
            json!({"fullname": "X", "departmentid": 1, "contractdate": "2023-13-01"}),
            400,
            "invalid_parameter",
        ),
        (
            "POST",
            "/api/subscriber/create/",
            json!({"fullname": "X", "departmentid": 1, "accountnumber": holder.account_number}),
            409,
            "conflict",
        ),
        (
            "POST",
            "/api/subscriber/dnadd/",
            json!({"SubscriberId": 999999, "DN": "5551234", "pbxid": 291}),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/subscriber/dnadd/",
            json!({"SubscriberId": 1234, "DN": "55-12", "pbxid": taken.pbx_id}),
            400,
            "invalid_parameter",
        ),
        (
            "POST",
            "/api/subscriber/dnadd/",
            json!({"SubscriberId": 1234, "DN": "5551234", "pbxid": taken.pbx_id, "fromdate": "02.06.2023"}),
            400,
            "invalid_parameter",
        ),
        (
            "POST",
            "/api/subscriber/dnadd/",
            json!({"SubscriberId": 1234, "DN": taken.dn, "pbxid": taken.pbx_id}),
            409,
            "conflict",
        ),
        (
            "POST",
            "/api/subscriber/update/",
            json!({"id": 999999, "street": "x"}),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/subscriber/update/",
            json!({"id": 1234, "birthday": "1990-02-31"}),
            400,
            "invalid_parameter",
        ),
        (
            "POST",
            "/api/subscriber/update/",
            json!({"id": 1234, "departmentid": 999}),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/accounts/payment/",
            json!({"id": 999999, "paymentday": "2025-05-01", "payment": 1}),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/accounts/payment/",
            json!({"id": 1234, "paymentday": "2025-05-01", "payment": "abc"}),
            400,
            "invalid_parameter",
        ),
        (
            "POST",
            "/api/accounts/payment/",
            json!({"id": 1234, "paymentday": "2025-05-01", "payment": 1, "paymenttype": 4}),
            400,
            "invalid_parameter",
        ),
        (
            "POST",
            "/api/sql/",
            json!({"query": "DELETE FROM subscribers"}),
            400,
            "invalid_parameter",
        ),
        (
            "POST",
            "/api/sql/",
            json!({"query": "SELECT 1; DELETE FROM subscribers"}),
            400,
            "invalid_parameter",
        ),
        (
            "POST",
            "/api/sql/",
            json!({"query": "WITH x AS (SELECT 1) DELETE FROM subscribers"}),
            400,
            "invalid_parameter",
        ),
        (
            "POST",
            "/api/sql/",
            json!({"query": "SELECT * FROM no_such_table"}),
            400,
            "invalid_parameter",
        ),
        (
            "POST",
            "/api/subscriber/update/",
            json!("not an object"),
            400,
            "invalid_parameter",
        ),
    ];
    for (verb, path, body, status, code) in cases {
        let r = if verb == "GET" {
            api.get(path).await
        } else {
            api.post_json(path, body.clone()).await
        };
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{verb} {path} {body}: {}",
            r.body
        );
        assert!(!r.json()["message"].as_str().unwrap().is_empty());
    }
    // the DN conflict names the holder
    let other = sim
        .state()
        .subscribers
        .iter()
        .find(|s| s.id != 1234 && s.node_id == holder.node_id)
        .unwrap()
        .id;
    let r = api
        .post_json(
            "/api/subscriber/dnadd/",
            json!({"SubscriberId": other, "DN": taken.dn, "pbxid": taken.pbx_id}),
        )
        .await;
    assert!(
        r.json()["message"].as_str().unwrap().contains("1234"),
        "{}",
        r.body
    );
    // XML errors
    let r = api.get("/api/subscriber/get/xml/?id=999999").await;
    assert_eq!(r.status, 404);
    assert!(
        r.body.contains("<error><code>not_found</code><message>"),
        "{}",
        r.body
    );
    // the refused writes changed nothing
    assert_eq!(sim.state().subscribers.len(), 200);
    assert_eq!(sim.state().subscriber(1234).unwrap(), &holder);
    sim.shutdown().await;
}

#[tokio::test]
async fn lists_filters_claims_and_sql() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    let state = sim.state();
    // department lists include sub-departments
    for dep in &state.departments {
        let mut tree = vec![dep.id];
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i];
            tree.extend(
                state
                    .departments
                    .iter()
                    .filter(|d| d.parent_id == Some(parent))
                    .map(|d| d.id),
            );
            i += 1;
        }
        let want = state
            .subscribers
            .iter()
            .filter(|s| tree.contains(&s.department_id))
            .count();
        let got = api
            .get(&format!("/api/subscriber/list/department/?id={}", dep.id))
            .await
            .json();
        assert_eq!(got.as_array().unwrap().len(), want, "department {}", dep.id);
    }
    for node in &state.nodes {
        let want = state
            .subscribers
            .iter()
            .filter(|s| s.node_id == node.id)
            .count();
        let got = api
            .get(&format!("/api/subscriber/list/node/?id={}", node.id))
            .await
            .json();
        assert_eq!(got.as_array().unwrap().len(), want);
    }
    // a root department's list is its node's list
    let got = api
        .get("/api/subscriber/list/department/?id=1")
        .await
        .json();
    assert_eq!(
        got.as_array().unwrap().len(),
        state.subscribers.iter().filter(|s| s.node_id == 1).count()
    );
    // tariffs.details filters, 0 = all
    let all = api
        .get("/api/tariffs/details/?providerid=0&planid=0&rateid=0&direction=all")
        .await
        .json();
    let active_or_not = state.tariffs.len();
    assert_eq!(all.as_array().unwrap().len(), active_or_not);
    assert_eq!(
        api.get("/api/tariffs/details/").await.json(),
        all,
        "absent filters = all"
    );
    let plan2 = api.get("/api/tariffs/details/?planid=2").await.json();
    assert!(
        plan2
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["planid"] == json!(2))
    );
    let incoming = api.get("/api/tariffs/details/?direction=in").await.json();
    assert!(!incoming.as_array().unwrap().is_empty());
    assert!(
        incoming
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["direction"] == json!("in"))
    );
    let one = api
        .get(&format!(
            "/api/tariffs/details/?rateid={}",
            state.tariffs[3].id
        ))
        .await
        .json();
    assert_eq!(one.as_array().unwrap().len(), 1);
    let provider = api
        .get("/api/tariffs/details/?providerid=2&direction=out")
        .await
        .json();
    assert!(
        provider
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["providerid"] == json!(2) && t["direction"] == json!("out"))
    );
    // tariffs.time: bands cover 0..24
    let bands = api
        .get(&format!(
            "/api/tariffs/time/?rateid={}",
            state.tariffs[0].id
        ))
        .await
        .json();
    let bands = bands.as_array().unwrap();
    assert_eq!(bands.first().unwrap()["fromhour"], json!(0));
    assert_eq!(bands.last().unwrap()["tohour"], json!(24));
    // plans: active only
    let plans = api.get("/api/tariffs/plans/").await.json();
    assert_eq!(
        plans.as_array().unwrap().len(),
        state.plans.iter().filter(|p| p.active).count()
    );
    // claims reflect the user's rights
    let sim2 = start(SimConfig {
        users: vec![SimUser::with_rights(
            "clerk",
            "pw",
            &["subscriber.get", "claims"],
        )],
        ..config()
    })
    .await;
    let clerk = Api::login(&sim2, "clerk", "pw", None).await;
    assert_eq!(
        clerk.get("/api/claims/").await.json(),
        json!(["subscriber.get", "claims"])
    );
    let xml = clerk.get("/api/claims/xml/").await;
    assert!(
        xml.body
            .contains("<item>subscriber.get</item><item>claims</item>"),
        "{}",
        xml.body
    );
    sim2.shutdown().await;
    // sql: read-only SELECTs on the live data
    let r = api
        .post_json(
            "/api/sql/",
            json!({"query": "select count(*) as n from subscribers"}),
        )
        .await
        .json();
    assert_eq!(r, json!({"columns": ["n"], "rows": [[200]]}));
    let r = api
        .post_json("/api/sql/", json!({"query": "SELECT s.id, d.dn FROM subscribers s JOIN dns d ON d.subscriberid = s.id WHERE s.id = 1234 ORDER BY d.id"}))
        .await
        .json();
    assert_eq!(
        r["rows"].as_array().unwrap().len(),
        state.subscriber(1234).unwrap().dns.len()
    );
    // a write is visible to sql afterwards (the copy is rebuilt)
    let created = api
        .post_json(
            "/api/subscriber/create/",
            json!({"fullname": "Sql Visible", "departmentid": 2}),
        )
        .await
        .json();
    let r = api.post_json("/api/sql/", json!({"query": "SELECT fullname FROM subscribers WHERE id = (SELECT max(id) FROM subscribers)"})).await.json();
    assert_eq!(r["rows"], json!([["Sql Visible"]]), "{created}");
    sim.shutdown().await;
}

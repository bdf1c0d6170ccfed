//! State: writes are visible to later reads, summaries add up, the dataset is
//! deterministic, operator actions and the control API, counters, shutdown.

mod sim_support;

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sim_support::*;
use tariscope_sync::sim::{DatasetConfig, SimConfig};

fn dec(v: &Value) -> Decimal {
    match v {
        Value::Number(n) => n.to_string().parse().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

#[tokio::test]
async fn create_update_and_lists() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    let dep = sim
        .state()
        .departments
        .iter()
        .find(|d| d.parent_id.is_some())
        .unwrap()
        .clone();
    let r = api
        .post_json(
            "/api/subscriber/create/",
            json!({"fullname": "Bondarenko Oksana Ivanivna", "departmentid": dep.id, "subscribertype": 0,
                   "personalcode": "1234567890", "rateplanid": 1, "connectiondate": "2025-05-02"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(id, 1401, "ids continue after the generated ones");
    let rec = api
        .get(&format!("/api/subscriber/get/?id={id}"))
        .await
        .json();
    assert_eq!(rec["departmentid"], json!(dep.id));
    assert_eq!(rec["nodeid"], json!(dep.node_id));
    assert_eq!(rec["personalcode"], json!("1234567890"));
    assert_eq!(rec["connectiondate"], json!("2025-05-02"));
    assert_eq!(rec["dns"], json!([]));
    let list = api
        .get(&format!("/api/subscriber/list/department/?id={}", dep.id))
        .await
        .json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == json!(id))
    );
    let node_list = api
        .get(&format!("/api/subscriber/list/node/?id={}", dep.node_id))
        .await
        .json();
    assert!(
        node_list
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == json!(id))
    );

    // partial update: changed fields only; null clears; unknown names ignored; any casing
    let r = api
        .post_json(
            "/api/subscriber/update/",
            json!({"id": id, "street": "vul. Sadova", "house": "7", "FLAT": "12", "email": "o.b@ukr.net",
                   "ispublic": true, "birthday": "1985-03-04", "privilegediscount": 10, "no_such_field": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (v["street"].clone(), v["House"].clone(), v["Flat"].clone()),
        (json!("vul. Sadova"), json!("7"), json!("12"))
    );
    assert!(r.body.contains("\"privilegediscount\":10.00"));
    let r = api
        .post_json(
            "/api/subscriber/update/",
            json!({"id": id, "email": null, "departmentid": 1}),
        )
        .await;
    let v = r.json();
    assert_eq!(v["email"], Value::Null);
    assert_eq!(
        v["street"],
        json!("vul. Sadova"),
        "absent fields are unchanged"
    );
    assert_eq!(
        (v["departmentid"].clone(), v["nodeid"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        api.get("/api/subscriber/get/?email=o.b@ukr.net")
            .await
            .status,
        404
    );
    // a refused update changes nothing, even the valid fields in it
    let before = sim.state().subscriber(id).unwrap().clone();
    let r = api
        .post_json(
            "/api/subscriber/update/",
            json!({"id": id, "street": "x", "abonenttype": 9}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(sim.state().subscriber(id).unwrap(), &before);
    // the control API sees the record
    let ctl = Api::anon(&sim, None);
    let s = ctl.get(&format!("/_sim/subscribers/{id}")).await.json();
    assert_eq!(s["street"], json!("vul. Sadova"));
    assert_eq!(
        ctl.get("/_sim/subscribers")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        201
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn dnadd_and_payment_change_later_reads() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    let s = sim.state().subscriber(1234).unwrap().clone();
    let pbx = s.dns[0].pbx_id;
    let r = api
        .post_json(
            "/api/subscriber/dnadd/",
            json!({"SubscriberId": 1234, "DN": "2001", "pbxid": pbx, "description": "new line"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let dn_id = r.json()["id"].as_i64().unwrap();
    let rec = api.get("/api/subscriber/get/?id=1234").await.json();
    let added = rec["dns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == json!(dn_id))
        .unwrap()
        .clone();
    assert_eq!(added["dn"], json!("2001"));
    assert_eq!(added["description"], json!("new line"));
    assert_eq!(
        added["fromdate"],
        json!(chrono::Utc::now().date_naive().to_string()),
        "fromdate defaults to today"
    );
    // the same DN on the other PBX of the node is fine
    let other_pbx = sim
        .state()
        .pbxs
        .iter()
        .find(|p| p.node_id == s.node_id && p.id != pbx)
        .unwrap()
        .id;
    let r = api
        .post_json(
            "/api/subscriber/dnadd/",
            json!({"SubscriberId": 1234, "DN": "2001", "pbxid": other_pbx}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // payment: visible in payments and in the day's summary
    let day = NaiveDate::from_ymd_opt(2025, 5, 10).unwrap();
    let q = "/api/accounts.summary/?id=1234&year=2025&month=5&day=10";
    let before = api.get(q).await.json();
    let r = api.post_json("/api/accounts/payment/", json!({"id": 1234, "paymentday": "2025-05-10", "payment": "370.00", "paymenttype": 3, "bank": "PrivatBank"})).await;
    let pid = r.json()["paymentid"].as_i64().unwrap();
    let after = api.get(q).await.json();
    assert_eq!(
        dec(&after["payment"]) - dec(&before["payment"]),
        Decimal::new(370, 0)
    );
    assert_eq!(
        dec(&after["end_debt"]),
        dec(&before["end_debt"]) - Decimal::new(370, 0)
    );
    assert_eq!(dec(&after["start_debt"]), dec(&before["start_debt"]));
    let next = api
        .get("/api/accounts.summary/?id=1234&year=2025&month=5&day=11")
        .await
        .json();
    assert_eq!(dec(&next["start_debt"]), dec(&after["end_debt"]));
    let list = api
        .get("/api/accounts/payments/?id=1234&fromdate=2025-05-10&todate=2025-05-10")
        .await
        .json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["paymentid"] == json!(pid))
    );
    let (_, end, _, paid) = sim.state().summary(1234, day);
    assert_eq!(end, dec(&after["end_debt"]));
    assert_eq!(paid, dec(&after["payment"]));
    let ctl = Api::anon(&sim, None);
    let payments = ctl.get("/_sim/payments").await.json();
    assert!(
        payments
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["payment_id"] == json!(pid) && p["amount"] == json!("370.00"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn summaries_add_up_over_the_whole_history() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    let state = sim.state();
    for id in [1201, 1234, 1300, 1400] {
        let charges = api
            .get(&format!(
                "/api/accounts/charges/?id={id}&fromdate={}&todate={}",
                state.start_date, state.end_date
            ))
            .await
            .json();
        let payments = api
            .get(&format!(
                "/api/accounts/payments/?id={id}&fromdate={}&todate={}",
                state.start_date, state.end_date
            ))
            .await
            .json();
        let mut prev_end: Option<Decimal> = None;
        let mut day = state.start_date;
        while day <= state.end_date {
            let v = api
                .get(&format!(
                    "/api/accounts.summary/?id={id}&year={}&month={}&day={}",
                    day.format("%Y"),
                    day.format("%-m"),
                    day.format("%-d")
                ))
                .await
                .json();
            let (start, end, charge, payment) = (
                dec(&v["start_debt"]),
                dec(&v["end_debt"]),
                dec(&v["charge"]),
                dec(&v["payment"]),
            );
            assert_eq!(
                end,
                start + charge - payment,
                "{id} {day}: end = start + charge - payment"
            );
            if let Some(p) = prev_end {
                assert_eq!(start, p, "{id} {day}: start = previous end");
            }
            let d = day.to_string();
            let day_charges: Decimal = charges
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["recdate"] == json!(d))
                .map(|c| dec(&c["charge"]))
                .sum();
            let day_payments: Decimal = payments
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["paymentday"] == json!(d))
                .map(|p| dec(&p["payment"]))
                .sum();
            assert_eq!((charge, payment), (day_charges, day_payments), "{id} {day}");
            prev_end = Some(end);
            day = day.checked_add_days(Days::new(1)).unwrap();
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn same_seed_same_data_other_seed_other_data() {
    let a = start(config()).await;
    let b = start(config()).await;
    let c = start(SimConfig {
        dataset: DatasetConfig {
            seed: 2,
            ..config().dataset
        },
        ..config()
    })
    .await;
    assert_eq!(a.state(), b.state());
    assert_ne!(a.state().subscribers, c.state().subscribers);
    let (ca, cb, cc) = (
        Api::anon(&a, None),
        Api::anon(&b, None),
        Api::anon(&c, None),
    );
    let sa = ca.get("/_sim/subscribers").await.body;
    assert_eq!(sa, cb.get("/_sim/subscribers").await.body);
    assert_ne!(sa, cc.get("/_sim/subscribers").await.body);
    let (aa, ab) = (Api::demo(&a).await, Api::demo(&b).await);
    for path in [
        "/api/subscriber/get/?id=1300",
        "/api/accounts/charges/?id=1300&fromdate=2025-04-01&todate=2025-05-31",
        "/api/subscriber/list/node/?id=2",
    ] {
        assert_eq!(aa.get(path).await.body, ab.get(path).await.body, "{path}");
    }
    // sizes follow the knobs
    let big = start(SimConfig {
        dataset: DatasetConfig {
            nodes: 3,
            departments_per_node: 6,
            subscribers: 50,
            days: 10,
            ..config().dataset
        },
        ..config()
    })
    .await;
    let s = big.state();
    assert_eq!(
        (s.nodes.len(), s.departments.len(), s.subscribers.len()),
        (3, 18, 50)
    );
    assert_eq!((s.end_date - s.start_date).num_days(), 9);
    for sim in [a, b, c, big] {
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn operator_actions() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    assert!(sim.operator_update(1234, "street", Some("vul. Operatorska")));
    assert!(sim.operator_update(1234, "House", Some("99")));
    assert!(sim.operator_update(1234, "email", None));
    assert!(!sim.operator_update(1234, "no_such_field", Some("x")));
    assert!(!sim.operator_update(1234, "birthday", Some("yesterday")));
    assert!(!sim.operator_update(999_999, "street", Some("x")));
    let v = api.get("/api/subscriber/get/?id=1234").await.json();
    assert_eq!(
        (v["street"].clone(), v["House"].clone(), v["email"].clone()),
        (json!("vul. Operatorska"), json!("99"), Value::Null)
    );

    let node = sim.state().subscriber(1234).unwrap().node_id;
    assert!(sim.operator_remove(1234));
    assert!(!sim.operator_remove(1234));
    assert_eq!(api.get("/api/subscriber/get/?id=1234").await.status, 404);
    let list = api
        .get(&format!("/api/subscriber/list/node/?id={node}"))
        .await
        .json();
    assert!(
        !list
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == json!(1234))
    );

    // the same through the control API
    let ctl = Api::anon(&sim, None);
    let r = ctl
        .request(
            reqwest::Method::PATCH,
            "/_sim/subscribers/1235",
            Some(json!({"street": "vul. Nova", "Flat": "3", "ispublic": false, "departmentid": 1})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = api.get("/api/subscriber/get/?id=1235").await.json();
    assert_eq!(
        (
            v["street"].clone(),
            v["Flat"].clone(),
            v["ispublic"].clone(),
            v["departmentid"].clone()
        ),
        (json!("vul. Nova"), json!("3"), json!(false), json!(1))
    );
    assert_eq!(
        ctl.request(
            reqwest::Method::PATCH,
            "/_sim/subscribers/1235",
            Some(json!({"street": "vul. Ne Ta", "bogus": 1}))
        )
        .await
        .status,
        400
    );
    assert_eq!(
        api.get("/api/subscriber/get/?id=1235").await.json()["street"],
        json!("vul. Nova"),
        "a refused PATCH changes nothing"
    );
    assert_eq!(
        ctl.request(
            reqwest::Method::PATCH,
            "/_sim/subscribers/1",
            Some(json!({"street": "x"}))
        )
        .await
        .status,
        404
    );
    assert_eq!(
        ctl.request(reqwest::Method::DELETE, "/_sim/subscribers/1235", None)
            .await
            .status,
        200
    );
    assert_eq!(
        ctl.request(reqwest::Method::DELETE, "/_sim/subscribers/1235", None)
            .await
            .status,
        404
    );
    assert_eq!(api.get("/api/subscriber/get/?id=1235").await.status, 404);
    assert_eq!(ctl.get("/_sim/subscribers/1235").await.status, 404);
    // a removed subscriber's DNs are free again
    let freed = sim.state().subscriber(1236).unwrap().dns[0].clone();
    assert!(sim.operator_remove(1236));
    let taker = sim
        .state()
        .subscribers
        .iter()
        .find(|s| {
            s.node_id
                == sim
                    .state()
                    .pbxs
                    .iter()
                    .find(|p| p.id == freed.pbx_id)
                    .unwrap()
                    .node_id
        })
        .unwrap()
        .id;
    let r = api
        .post_json(
            "/api/subscriber/dnadd/",
            json!({"SubscriberId": taker, "DN": freed.dn, "pbxid": freed.pbx_id}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn control_api_stats_counters_and_health() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    let ctl = Api::anon(&sim, None);
    assert_eq!(
        ctl.get("/_sim/health").await.json(),
        json!({"status": "ok"})
    );
    for _ in 0..3 {
        api.get("/api/subscriber/get/?id=1234").await;
    }
    api.get("/api/accounts.summary/?id=1234&year=2025&month=5&day=1")
        .await;
    api.get("/api/nothing/here/").await;
    assert_eq!(sim.request_count("subscriber.get"), 3);
    assert_eq!(sim.request_count("accounts.summary"), 1);
    assert_eq!(sim.request_count("api.auth"), 1);
    let stats = ctl.get("/_sim/stats").await.json();
    let state = sim.state();
    assert_eq!(stats["counts"]["subscribers"], json!(200));
    assert_eq!(stats["counts"]["payments"], json!(state.payments.len()));
    assert_eq!(stats["counts"]["charges"], json!(state.charges.len()));
    assert_eq!(
        stats["counts"]["dns"],
        json!(state.subscribers.iter().map(|s| s.dns.len()).sum::<usize>())
    );
    assert_eq!(stats["counts"]["nodes"], json!(2));
    assert_eq!(stats["counts"]["departments"], json!(8));
    assert_eq!(stats["requests"]["subscriber.get"], json!(3));
    assert_eq!(stats["requests"]["api.auth"], json!(1));
    assert_eq!(
        ctl.get("/_sim/payments")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        state.payments.len()
    );
    assert_eq!(
        ctl.request(reqwest::Method::POST, "/_sim/reset-counters", None)
            .await
            .status,
        200
    );
    assert_eq!(sim.request_count("subscriber.get"), 0);
    sim.reset_counters();
    assert_eq!(
        ctl.get("/_sim/stats").await.json()["requests"]["api.auth"],
        json!(0)
    );
    assert_eq!(ctl.get("/_sim/nothing").await.status, 404);
    // control routes are not counted and not faulted
    sim.set_faults(tariscope_sync::sim::FaultPlan {
        global: tariscope_sync::sim::Fault::drop_before(),
        ..Default::default()
    });
    assert_eq!(ctl.get("/_sim/health").await.status, 200);
    sim.clear_faults();
    // shutdown closes the port
    let addr = sim.addr();
    sim.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// Read one HTTP/1.1 response with a Content-Length body; returns (status line, body).
async fn read_response(tcp: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> (String, String) {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                buf.drain(..end + 4 + len);
                return (head.lines().next().unwrap().to_owned(), body);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    use tokio::io::AsyncWriteExt;
    let sim = start(config()).await;
    let token = Api::demo(&sim).await.token.unwrap();
    let mut tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let mut buf = Vec::new();
    for id in [1234, 1235, 999_999, 1236] {
        let req = format!(
            "GET /api/subscriber/get/?id={id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let (status, body) = read_response(&mut tcp, &mut buf).await;
        let want = if id == 999_999 { "404" } else { "200" };
        assert!(status.contains(want), "{status}");
        if want == "200" {
            assert!(body.contains(&format!("\"id\":{id},")), "{body}");
        }
    }
    sim.shutdown().await;
}

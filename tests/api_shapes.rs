//! Tolerance beyond the reference profile, against a tiny canned HTTP server: empty and
//! odd response shapes, 204/404, decode errors, 403 as the token refusal, and requests
//! sent exactly as documented (names, casing, dates, decimals, headers, profile overrides).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::NaiveDate;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tariscope_sync::api::{
    ApiError, ClientConfig, Encoding, RetrySettings, Secret, TariscopeClient, Verb,
};
use tariscope_sync::model::{NewDn, NewPayment, PaymentType};
use tokio::net::TcpListener;

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    content_type: String,
    authorization: String,
    user_agent: String,
    body: String,
}

type Reply = (u16, &'static str);
type Handler = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

struct Canned {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Canned {
    /// `/api/auth` answers `{"token": "tok-N"}`; everything else goes to `handler`
    /// (with the number of logins so far).
    async fn start(handler: Handler) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let logins = Arc::new(Mutex::new(0usize));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, log, logins) = (handler.clone(), log.clone(), logins.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (handler, log, logins) = (handler.clone(), log.clone(), logins.clone());
                        async move {
                            let header = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_owned()
                            };
                            let mut s = Seen {
                                method: req.method().to_string(),
                                path: req.uri().path().to_owned(),
                                query: req.uri().query().unwrap_or("").to_owned(),
                                content_type: header("content-type"),
                                authorization: header("authorization"),
                                user_agent: header("user-agent"),
                                body: String::new(),
                            };
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            s.body = String::from_utf8_lossy(&body).into_owned();
                            log.lock().unwrap().push(s.clone());
                            let (status, text) = if s.path.starts_with("/api/auth") {
                                let mut n = logins.lock().unwrap();
                                *n += 1;
                                let token: &'static str = Box::leak(
                                    format!("{{\"token\":\"tok-{n}\"}}").into_boxed_str(),
                                );
                                (200, token)
                            } else {
                                let n = *logins.lock().unwrap();
                                handler(&s, n)
                            };
                            let mut resp =
                                Response::new(Full::new(Bytes::from_static(text.as_bytes())));
                            *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { addr, seen }
    }

    fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(format!("http://{}", self.addr), "demo", Secret::new("pw"));
        c.rate_per_sec = 0.0;
        c.retry = RetrySettings {
            max_attempts: 3,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(5),
        };
        c
    }

    fn client(&self) -> TariscopeClient {
        TariscopeClient::new(self.config()).unwrap()
    }

    fn seen(&self, path_prefix: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }
}

fn by_query(table: &'static [(&'static str, Reply)]) -> Handler {
    Arc::new(move |s: &Seen, _| {
        table
            .iter()
            .find(|(q, _)| s.query == *q)
            .map(|(_, r)| *r)
            .unwrap_or((500, "no canned answer"))
    })
}

#[tokio::test]
async fn empty_and_odd_single_record_shapes() {
    let server = Canned::start(by_query(&[
        ("id=1", (204, "")),
        ("id=2", (200, "null")),
        ("id=3", (200, "[]")),
        ("id=4", (200, "[{\"ID\":\"4\",\"FullName\":\"A\"}]")),
        ("id=5", (200, "{\"d\":{\"id\":5}}")),
        ("id=6", (404, "{\"error\":\"not_found\"}")),
        ("id=7", (200, "  ")),
        (
            "id=8",
            (200, "<response><id>8</id><House>1</House></response>"),
        ),
    ]))
    .await;
    let c = server.client();
    for (id, want) in [
        (1, None),
        (2, None),
        (3, None),
        (4, Some(4)),
        (5, Some(5)),
        (6, None),
        (7, None),
        (8, Some(8)),
    ] {
        let got = c
            .subscriber_get(id)
            .await
            .unwrap_or_else(|e| panic!("id {id}: {e}"));
        assert_eq!(got.as_ref().map(|s| s.id), want, "id {id}");
    }
    assert_eq!(
        c.subscriber_get(4)
            .await
            .unwrap()
            .unwrap()
            .fullname
            .as_deref(),
        Some("A")
    );
    assert_eq!(
        c.subscriber_get(8).await.unwrap().unwrap().house.as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn list_shapes_and_meaningful_404s() {
    let server = Canned::start(Arc::new(|s: &Seen, _| {
        match (s.path.as_str(), s.query.as_str()) {
            ("/api/subscriber/list/node/", "id=1") => {
                (200, "{\"id\":10,\"fullname\":\"only one\"}")
            }
            ("/api/subscriber/list/node/", "id=2") => {
                (200, "{\"data\":[{\"id\":1},{\"id\":2}],\"total\":2}")
            }
            ("/api/subscriber/list/node/", "id=3") => (200, "null"),
            ("/api/subscriber/list/node/", "id=4") => (204, ""),
            ("/api/subscriber/list/node/", "id=6") => {
                (200, "[{\"id\":1},{\"id\":\"zz\"},{\"ID\":\"3\"}]")
            }
            ("/api/subscriber/list/node/", _) => {
                (404, "{\"error\":\"not_found\",\"message\":\"no node 5\"}")
            }
            ("/api/accounts/charges/", _) => (404, ""),
            ("/api/tariffs/plans/", _) => (
                200,
                "<response><plan><id>1</id></plan><plan><id>2</id></plan></response>",
            ),
            ("/api/claims/", _) => (200, "{\"claims\":\"subscriber.get,claims\"}"),
            _ => (500, ""),
        }
    }))
    .await;
    let c = server.client();
    let ids =
        |v: Vec<tariscope_sync::model::Subscriber>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(c.subscribers_by_node(1).await.unwrap()), vec![10]);
    assert_eq!(ids(c.subscribers_by_node(2).await.unwrap()), vec![1, 2]);
    assert_eq!(
        ids(c.subscribers_by_node(3).await.unwrap()),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(c.subscribers_by_node(4).await.unwrap()),
        Vec::<i64>::new()
    );
    let err = c.subscribers_by_node(5).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    // Read one record at a time, a bad record is an error item between good ones; read
    // whole, it fails the list.
    let items: Vec<_> = c.subscriber_records_by_node(6).await.unwrap().collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_ref().unwrap().id, 1);
    let bad = items[1].as_ref().unwrap_err().to_string();
    assert!(
        bad.contains("subscriber.list.node") && bad.contains("[1].id"),
        "{bad}"
    );
    assert!(bad.contains("zz"), "the excerpt shows the record: {bad}");
    assert_eq!(items[2].as_ref().unwrap().id, 3);
    let err = c.subscribers_by_node(6).await.unwrap_err().to_string();
    assert!(err.contains("[1].id"), "{err}");
    let day = NaiveDate::from_ymd_opt(2023, 5, 1).unwrap();
    assert!(c.account_charges(1, day, day).await.unwrap().is_empty());
    let plans: Vec<i64> = c
        .tariff_plans()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(plans, vec![1, 2]);
    assert_eq!(c.claims().await.unwrap(), vec!["subscriber.get", "claims"]);
}

#[tokio::test]
async fn undecodable_answers_name_method_field_and_body() {
    let server = Canned::start(Arc::new(|s: &Seen, _| match s.path.as_str() {
        "/api/subscriber/get/" => (200, "{\"id\":\"abc\",\"fullname\":\"x\"}"),
        "/api/accounts/payments/" => (
            200,
            "[{\"paymentid\":1},{\"paymentid\":2,\"paymentday\":\"31.02.2023\"}]",
        ),
        _ => (200, "{\"truncated\": "),
    }))
    .await;
    let c = server.client();
    let err = c.subscriber_get(1).await.unwrap_err();
    match &err {
        ApiError::Decode {
            method,
            field,
            excerpt,
            ..
        } => {
            assert_eq!((method.as_str(), field.as_str()), ("subscriber.get", "id"));
            assert!(excerpt.contains("abc"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    let day = NaiveDate::from_ymd_opt(2023, 5, 1).unwrap();
    let err = c.account_payments(1, day, day).await.unwrap_err();
    assert!(err.to_string().contains("[1].paymentday"), "{err}");
    let err = c.services().await.unwrap_err();
    assert!(matches!(err, ApiError::Decode { .. }), "{err:?}");
    assert_eq!(
        server.seen("/api/services/").len(),
        1,
        "decode errors are not retried"
    );
}

#[tokio::test]
async fn an_unreadable_answer_to_a_write_is_outcome_unknown() {
    let server = Canned::start(Arc::new(|s: &Seen, _| match s.path.as_str() {
        "/api/subscriber/create/" => (204, ""),
        "/api/accounts/payment/" => (200, "{\"ok\":true}"),
        "/api/subscriber/dnadd/" => (200, "not json"),
        _ => (500, ""),
    }))
    .await;
    let c = server.client();
    let err = c
        .subscriber_create(&tariscope_sync::model::NewSubscriber {
            fullname: "A".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    let err = c
        .account_payment(&NewPayment {
            subscriber_id: 1,
            payment_day: NaiveDate::from_ymd_opt(2023, 5, 17).unwrap(),
            amount: "1.00".parse().unwrap(),
            payment_type: PaymentType::Cash,
            bank: None,
        })
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    let err = c
        .subscriber_dnadd(&NewDn {
            subscriber_id: 1,
            dn: "1".into(),
            pbx_id: 1,
            from_date: None,
            description: None,
        })
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert_eq!(c.stats().outcome_unknown, 3);
    assert_eq!(
        server.seen("/api/subscriber/create/").len(),
        1,
        "never resent"
    );
}

#[tokio::test]
async fn a_403_for_a_stale_token_costs_one_relogin() {
    // The first token is refused with 403 (a server that uses 403 for expiry); the
    // second works.
    let server = Canned::start(Arc::new(|s: &Seen, _| {
        if s.authorization == "Bearer tok-1" {
            (403, "{\"error\":\"forbidden\"}")
        } else {
            (200, "{\"version\":\"4.6.4\"}")
        }
    }))
    .await;
    let c = server.client();
    assert_eq!(c.version().await.unwrap().as_deref(), Some("4.6.4"));
    assert_eq!(server.seen("/api/auth").len(), 2);
    assert_eq!(server.seen("/api/tariscope/version/").len(), 2);
    assert_eq!(c.stats().retries, 0);
}

#[tokio::test]
async fn requests_are_sent_as_documented() {
    let server = Canned::start(Arc::new(|s: &Seen, _| match s.path.as_str() {
        "/api/accounts.summary/" => (
            200,
            "{\"date\":\"2025-05-20\",\"start_debt\":1,\"end_debt\":1,\"charge\":0,\"payment\":0}",
        ),
        "/api/subscriber/dnadd/" => (
            200,
            "{\"id\":1,\"subscriberid\":7334,\"pbxid\":292,\"dn\":\"2001\"}",
        ),
        "/api/accounts/payment/" => (
            200,
            "{\"subscriberid\":6193,\"paymentid\":9,\"paymentday\":\"2023-05-17\"}",
        ),
        "/api/accounts/charges/" => (200, "[]"),
        _ => (500, ""),
    }))
    .await;
    let c = server.client();
    c.account_summary(1234, NaiveDate::from_ymd_opt(2025, 5, 20).unwrap())
        .await
        .unwrap();
    let from = NaiveDate::from_ymd_opt(2023, 5, 1).unwrap();
    let to = NaiveDate::from_ymd_opt(2023, 5, 31).unwrap();
    c.account_charges(6169, from, to).await.unwrap();
    c.subscriber_dnadd(&NewDn {
        subscriber_id: 7334,
        dn: "2001".into(),
        pbx_id: 292,
        from_date: Some(NaiveDate::from_ymd_opt(2023, 6, 2).unwrap()),
        description: None,
    })
    .await
    .unwrap();
    c.account_payment(&NewPayment {
        subscriber_id: 6193,
        payment_day: NaiveDate::from_ymd_opt(2023, 5, 17).unwrap(),
        amount: "370.00".parse().unwrap(),
        payment_type: PaymentType::Account,
        bank: Some("PrivatBank".into()),
    })
    .await
    .unwrap();
    let auth = &server.seen("/api/auth")[0];
    assert_eq!(
        (auth.method.as_str(), auth.path.as_str()),
        ("POST", "/api/auth")
    );
    assert_eq!(auth.body, r#"{"username":"demo","password":"pw"}"#);
    let summary = &server.seen("/api/accounts.summary/")[0];
    assert_eq!(summary.method, "GET");
    assert_eq!(summary.query, "id=1234&year=2025&month=5&day=20");
    assert_eq!(summary.authorization, "Bearer tok-1");
    assert!(
        summary.user_agent.starts_with("tariscope-sync/"),
        "{}",
        summary.user_agent
    );
    assert_eq!(
        server.seen("/api/accounts/charges/")[0].query,
        "id=6169&fromdate=2023-05-01&todate=2023-05-31"
    );
    let dnadd = &server.seen("/api/subscriber/dnadd/")[0];
    assert_eq!(dnadd.method, "POST");
    assert!(dnadd.content_type.starts_with("application/json"));
    assert_eq!(
        dnadd.body,
        r#"{"SubscriberId":7334,"DN":"2001","pbxid":292,"fromdate":"2023-06-02"}"#
    );
    let pay = &server.seen("/api/accounts/payment/")[0];
    assert_eq!(
        pay.body,
        r#"{"id":6193,"paymentday":"2023-05-17","payment":370.00,"paymenttype":3,"bank":"PrivatBank"}"#
    );
}

#[tokio::test]
async fn profile_overrides_change_path_verb_encoding_and_names() {
    let server = Canned::start(Arc::new(|s: &Seen, _| match s.path.as_str() {
        "/api/accounts/summary/xml/" => (
            200,
            "<response><date>2025-05-20</date><start_debt>1.5</start_debt></response>",
        ),
        "/api/subscriber/dnadd/xml/" => (200, "<response><id>1</id><dn>2001</dn></response>"),
        _ => (500, ""),
    }))
    .await;
    let mut cfg = server.config();
    cfg.format = tariscope_sync::api::Format::Xml;
    let summary = cfg.profile.methods.get_mut("accounts.summary").unwrap();
    summary.path = "/api/accounts/summary/".into();
    let dnadd = cfg.profile.methods.get_mut("subscriber.dnadd").unwrap();
    dnadd.verb = Verb::Put;
    dnadd.encoding = Encoding::Form;
    dnadd
        .fields
        .insert("subscriberid".into(), "subscriberId".into());
    let c = TariscopeClient::new(cfg).unwrap();
    let s = c
        .account_summary(1, NaiveDate::from_ymd_opt(2025, 5, 20).unwrap())
        .await
        .unwrap();
    assert_eq!(s.start_debt, Some("1.5".parse().unwrap()));
    let dn = c
        .subscriber_dnadd(&NewDn {
            subscriber_id: 7,
            dn: "2001".into(),
            pbx_id: 3,
            from_date: None,
            description: Some("a b".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        (dn.subscriber_id, dn.dn.as_str(), dn.description.as_deref()),
        (7, "2001", Some("a b"))
    );
    assert_eq!(server.seen("/api/auth")[0].path, "/api/auth/xml");
    let sent = &server.seen("/api/subscriber/dnadd/xml/")[0];
    assert_eq!(sent.method, "PUT");
    assert_eq!(sent.content_type, "application/x-www-form-urlencoded");
    assert_eq!(sent.body, "subscriberId=7&DN=2001&pbxid=3&description=a+b");
}

#[test]
fn bad_tls_and_url_settings_are_config_errors() {
    let mut cfg = ClientConfig::new("ftp://x", "u", Secret::new("p"));
    assert!(matches!(
        TariscopeClient::new(cfg.clone()),
        Err(ApiError::Config { .. })
    ));
    cfg.base_url = "not a url".into();
    assert!(matches!(
        TariscopeClient::new(cfg.clone()),
        Err(ApiError::Config { .. })
    ));
    cfg.base_url = "https://127.0.0.1:1".into();
    let dir = tempfile::tempdir().unwrap();
    cfg.ca_file = Some(dir.path().join("missing.pem"));
    let err = TariscopeClient::new(cfg.clone()).unwrap_err();
    assert!(err.to_string().contains("ca_file"), "{err}");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    cfg.ca_file = Some(junk);
    assert!(matches!(
        TariscopeClient::new(cfg.clone()),
        Err(ApiError::Config { .. })
    ));
    cfg.ca_file = None;
    cfg.concurrency = 0;
    assert!(matches!(
        TariscopeClient::new(cfg),
        Err(ApiError::Config { .. })
    ));
}

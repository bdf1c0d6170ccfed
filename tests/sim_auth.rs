//! Authentication and authorisation of the emulator: every failure of the profile's
//! error table (wrong password, missing, garbage, expired, foreign-IP and revoked
//! tokens, missing right) and the token's claims.

mod sim_support;

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use sim_support::*;
use tariscope_sync::sim::{SimConfig, SimUser};

fn second_ip() -> IpAddr {
    "127.0.0.2".parse().unwrap()
}

#[tokio::test]
async fn login_failures() {
    let sim = start(config()).await;
    let anon = Api::anon(&sim, None);
    let cases = [
        (
            json!({"username": "demo", "password": "wrong"}),
            401,
            "invalid_credentials",
        ),
        (
            json!({"username": "nobody", "password": "demo"}),
            401,
            "invalid_credentials",
        ),
        (json!({"username": "demo"}), 401, "invalid_credentials"),
        (
            json!({"username": "DEMO", "password": "demo"}),
            401,
            "invalid_credentials",
        ),
        (json!({"password": "demo"}), 400, "invalid_parameter"),
    ];
    for (body, status, code) in cases {
        let r = anon.post_json("/api/auth", body.clone()).await;
        assert_eq!((r.status, r.code().as_str()), (status, code), "{body}");
    }
    let r = anon.get("/api/auth").await;
    assert_eq!((r.status, r.code().as_str()), (405, "method_not_allowed"));
    // form fields work too
    let r = anon
        .post_form("/api/auth", &[("username", "demo"), ("password", "demo")])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sim.request_count("api.auth"), 7);
    sim.shutdown().await;
}

#[tokio::test]
async fn token_failures() {
    let sim = start(config()).await;
    let api = Api::demo(&sim).await;
    let token = api.token.clone().unwrap();
    let path = "/api/subscriber/get/?id=1234";
    assert_eq!(api.get(path).await.status, 200);

    let missing = Api::anon(&sim, None);
    let r = missing.get(path).await;
    assert_eq!((r.status, r.code().as_str()), (401, "token_missing"));
    let r = missing.request(reqwest::Method::GET, path, None).await;
    assert_eq!(r.code(), "token_missing");

    let basic = missing
        .http
        .get(format!("{}{path}", sim.base_url()))
        .basic_auth("demo", Some("demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401, "Basic auth is not a token");

    for garbage in [
        "garbage",
        "a.b.c",
        &format!("{token}x"),
        &token[..token.len() - 2],
    ] {
        let bad = Api {
            token: Some(garbage.to_owned()),
            ..missing.clone()
        };
        let r = bad.get(path).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "token_invalid"),
            "{garbage}"
        );
    }

    // a token from 127.0.0.1 used from 127.0.0.2
    let foreign = Api {
        token: Some(token.clone()),
        ..Api::anon(&sim, Some(second_ip()))
    };
    let r = foreign.get(path).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "token_ip_mismatch"),
        "{}",
        r.body
    );
    // ... and a token issued to 127.0.0.2 works from there only
    let second = Api::login(&sim, "demo", "demo", Some(second_ip())).await;
    assert_eq!(second.get(path).await.status, 200);
    let back = Api {
        token: second.token.clone(),
        ..missing.clone()
    };
    assert_eq!(back.get(path).await.code(), "token_ip_mismatch");

    // the claims: sub, ip, iat, exp = iat + 6 h
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], json!("demo"));
    assert_eq!(claims["ip"], json!("127.0.0.1"));
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        6 * 3600
    );

    // revocation: every token fails, a new login works
    sim.revoke_tokens();
    let r = api.get(path).await;
    assert_eq!((r.status, r.code().as_str()), (401, "token_invalid"));
    assert_eq!(second.get(path).await.code(), "token_invalid");
    let fresh = Api::demo(&sim).await;
    assert_eq!(fresh.get(path).await.status, 200);
    // revocation through the control API
    let ctl = Api::anon(&sim, None);
    assert_eq!(
        ctl.request(reqwest::Method::POST, "/_sim/revoke-tokens", None)
            .await
            .status,
        200
    );
    assert_eq!(fresh.get(path).await.code(), "token_invalid");
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_tokens() {
    let sim = start(SimConfig {
        token_ttl: Duration::ZERO,
        ..config()
    })
    .await;
    let api = Api::demo(&sim).await;
    let r = api.get("/api/subscriber/get/?id=1234").await;
    assert_eq!((r.status, r.code().as_str()), (401, "token_expired"));
    let r = api.get("/api/subscriber/get/xml/?id=1234").await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("<code>token_expired</code>"), "{}", r.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn method_rights() {
    let sim = start(SimConfig {
        users: vec![
            SimUser::with_rights("reader", "r", &["subscriber.get", "accounts.summary"]),
            SimUser::demo(),
        ],
        ..config()
    })
    .await;
    let reader = Api::login(&sim, "reader", "r", None).await;
    assert_eq!(reader.get("/api/subscriber/get/?id=1234").await.status, 200);
    assert_eq!(
        reader
            .get("/api/accounts.summary/?id=1234&year=2025&month=5&day=1")
            .await
            .status,
        200
    );
    for (verb, path) in [
        (
            "GET",
            "/api/accounts/charges/?id=1234&fromdate=2025-05-01&todate=2025-05-31",
        ),
        ("GET", "/api/claims/"),
        ("GET", "/api/tariscope/version/"),
        ("POST", "/api/subscriber/create/"),
        ("POST", "/api/sql/"),
    ] {
        let r = if verb == "GET" {
            reader.get(path).await
        } else {
            reader
                .post_json(
                    path,
                    json!({"fullname": "x", "departmentid": 1, "query": "select 1"}),
                )
                .await
        };
        assert_eq!((r.status, r.code().as_str()), (403, "forbidden"), "{path}");
        assert!(r.json()["message"].as_str().unwrap().contains("reader"));
    }
    assert_eq!(
        sim.state().subscribers.len(),
        200,
        "a forbidden create changes nothing"
    );
    let demo = Api::demo(&sim).await;
    assert_eq!(
        demo.get("/api/claims/")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        22
    );
    sim.shutdown().await;
}

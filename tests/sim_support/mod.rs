//! Helpers shared by the `sim_*` integration tests: start an emulator with a fixed
//! dataset, log in, and send hand-written requests with reqwest (never the project's
//! API client).

#![allow(dead_code)]

use std::net::IpAddr;

use serde_json::Value;
use tariscope_sync::sim::{DatasetConfig, SimConfig, SimHandle};

/// The fixed last day of history used by the tests.
pub fn end_date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2025, 5, 31).unwrap()
}

/// The default config with a fixed end date.
pub fn config() -> SimConfig {
    SimConfig {
        dataset: DatasetConfig {
            end_date: Some(end_date()),
            ..DatasetConfig::default()
        },
        ..SimConfig::default()
    }
}

pub async fn start(config: SimConfig) -> SimHandle {
    SimHandle::start(config).await.expect("start emulator")
}

/// A plain HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// `error` of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// A reqwest client (optionally bound to a local address) and a token.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

pub fn client(local: Option<IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    let body = r.text().await.unwrap();
    Resp {
        status,
        content_type,
        retry_after,
        body,
    }
}

impl Api {
    /// Anonymous client.
    pub fn anon(sim: &SimHandle, local: Option<IpAddr>) -> Api {
        Api {
            http: client(local),
            base: sim.base_url(),
            token: None,
        }
    }

    /// demo/demo from 127.0.0.1.
    pub async fn demo(sim: &SimHandle) -> Api {
        Self::login(sim, "demo", "demo", None).await
    }

    pub async fn login(sim: &SimHandle, user: &str, password: &str, local: Option<IpAddr>) -> Api {
        let mut api = Self::anon(sim, local);
        let r = api
            .post_json(
                "/api/auth",
                serde_json::json!({"username": user, "password": password}),
            )
            .await;
        assert_eq!(r.status, 200, "login: {}", r.body);
        // the key follows the wire variant's casing (`token`, `Token`)
        let v = r.json();
        let token = v
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("token"))
            .unwrap()
            .1;
        api.token = Some(token.as_str().unwrap().to_owned());
        api
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn try_get(&self, path: &str) -> reqwest::Result<Resp> {
        let r = self
            .auth(self.http.get(format!("{}{path}", self.base)))
            .send()
            .await?;
        Ok(resp(r).await)
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.try_get(path).await.unwrap()
    }

    pub async fn try_post_json(&self, path: &str, body: Value) -> reqwest::Result<Resp> {
        let r = self
            .auth(self.http.post(format!("{}{path}", self.base)))
            .json(&body)
            .send()
            .await?;
        Ok(resp(r).await)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Resp {
        self.try_post_json(path, body).await.unwrap()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        let r = self
            .auth(self.http.post(format!("{}{path}", self.base)))
            .form(form)
            .send()
            .await
            .unwrap();
        resp(r).await
    }

    /// Any verb, raw body, no token handling beyond the stored one.
    pub async fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Resp {
        let mut rb = self.auth(self.http.request(method, format!("{}{path}", self.base)));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        resp(rb.send().await.unwrap()).await
    }
}

/// Keys of a JSON object.
pub fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The documented field names of a subscriber record, in documented order, then ours.
pub const RECORD_FIELDS: &[&str] = &[
    "id",
    "fullname",
    "street",
    "House",
    "Flat",
    "email",
    "description",
    "authcode",
    "ispublic",
    "abonenttype",
    "code",
    "zipcode",
    "personalcode",
    "contractid",
    "information",
    "privilegeinfo",
    "area",
    "contractdate",
    "building",
    "floornumber",
    "accountId",
    "gender",
    "birthday",
    "bankaccount",
    "bankmfo",
    "taxcode",
    "deliverytype",
    "privilegediscount",
    "departmentid",
    "nodeid",
    "rateplanid",
    "connectiondate",
    "bankname",
    "dns",
];

//! The control API under `/_sim/` (no auth): health, state, counters, faults, token
//! revocation and operator edits, for tests that run the emulator as a separate process.
//!
//! Owns: the control routes and their JSON (plain serde of the emulator's own records).
//! Must not: serve API methods or be affected by faults and counters.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request};
use serde_json::{Value, json};

use super::config::FaultPlan;
use super::dataset::WriteError;
use super::dispatch::{HttpResponse, respond};
use super::state::Shared;

const JSON: &str = "application/json; charset=utf-8";

fn ok(v: &Value) -> HttpResponse {
    respond(200, JSON, v.to_string())
}

fn err(status: u16, message: &str) -> HttpResponse {
    respond(
        status,
        JSON,
        json!({"error": "control", "message": message}).to_string(),
    )
}

fn to_json<T: serde::Serialize>(v: &T) -> HttpResponse {
    match serde_json::to_string(v) {
        Ok(s) => respond(200, JSON, s),
        Err(e) => err(500, &e.to_string()),
    }
}

async fn body(req: Request<Incoming>) -> Result<Bytes, HttpResponse> {
    Limited::new(req.into_body(), 1 << 20)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| err(400, &format!("could not read the body: {e}")))
}

/// Handle a `/_sim/...` request.
pub async fn handle(shared: &Shared, req: Request<Incoming>) -> HttpResponse {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let rest = path.strip_prefix("/_sim").unwrap_or("");
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["health"]) => ok(&json!({"status": "ok"})),
        (&Method::GET, ["stats"]) => {
            let ds = shared.read();
            let requests: serde_json::Map<String, Value> = shared
                .request_counts()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), json!(v)))
                .collect();
            ok(&json!({
                "counts": {
                    "nodes": ds.nodes.len(),
                    "pbxs": ds.pbxs.len(),
                    "departments": ds.departments.len(),
                    "subscribers": ds.subscribers.len(),
                    "dns": ds.dn_count(),
                    "payments": ds.payments.len(),
                    "charges": ds.charges.len(),
                    "tariff_plans": ds.plans.len(),
                    "tariffs": ds.tariffs.len(),
                    "services": ds.services.len(),
                },
                "requests": requests,
                "start_date": ds.start_date,
                "end_date": ds.end_date,
            }))
        }
        (&Method::GET, ["subscribers"]) => {
            let ds = shared.read();
            to_json(&ds.subscribers.values().collect::<Vec<_>>())
        }
        (&Method::GET, ["subscribers", id]) => match id
            .parse::<i64>()
            .ok()
            .and_then(|id| shared.read().subscriber(id).cloned())
        {
            Some(s) => to_json(&s),
            None => err(404, "no such subscriber"),
        },
        (&Method::GET, ["payments"]) => to_json(&shared.read().payments),
        (&Method::GET, ["dns"]) => {
            let ds = shared.read();
            let list: Vec<Value> = ds
                .subscribers
                .values()
                .flat_map(|s| {
                    s.dns.iter().map(move |d| {
                        json!({"id": d.id, "subscriber_id": s.id, "pbx_id": d.pbx_id, "dn": d.dn,
                               "from_date": d.from_date, "description": d.description})
                    })
                })
                .collect();
            ok(&Value::Array(list))
        }
        (&Method::GET, ["faults"]) => to_json(&shared.faults()),
        (&Method::PUT, ["faults"]) => match body(req).await {
            Err(resp) => resp,
            Ok(b) => match serde_json::from_slice::<FaultPlan>(&b) {
                Ok(plan) => {
                    shared.set_faults(plan);
                    to_json(&shared.faults())
                }
                Err(e) => err(400, &format!("invalid fault plan: {e}")),
            },
        },
        (&Method::DELETE, ["faults"]) => {
            shared.set_faults(FaultPlan::default());
            ok(&json!({"status": "ok"}))
        }
        (&Method::PUT, ["accept-duplicate-accounts"]) => match body(req).await {
            Err(resp) => resp,
            Ok(b) => match serde_json::from_slice::<bool>(&b) {
                Ok(on) => {
                    shared.write().accept_duplicate_accounts = on;
                    ok(&json!({"accept_duplicate_accounts": on}))
                }
                Err(e) => err(400, &format!("the body must be true or false: {e}")),
            },
        },
        (&Method::POST, ["revoke-tokens"]) => {
            shared.signer.rotate();
            ok(&json!({"status": "ok"}))
        }
        (&Method::POST, ["reset-counters"]) => {
            shared.reset_counters();
            ok(&json!({"status": "ok"}))
        }
        (&Method::PATCH, ["subscribers", id]) => {
            let Ok(id) = id.parse::<i64>() else {
                return err(400, "the id must be an integer");
            };
            let b = match body(req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&b) else {
                return err(400, "the body must be a JSON object of record fields");
            };
            let texts: Vec<(String, Option<String>)> = fields
                .into_iter()
                .map(|(name, value)| {
                    let text = match value {
                        Value::Null => None,
                        Value::String(s) => Some(s),
                        other => Some(other.to_string()),
                    };
                    (name, text)
                })
                .collect();
            let refs: Vec<(&str, Option<&str>)> = texts
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_deref()))
                .collect();
            match shared.operator_update(id, &refs) {
                Ok(()) => {}
                Err(WriteError::NotFound(m)) => return err(404, &m),
                Err(WriteError::Invalid(m) | WriteError::Conflict(m)) => return err(400, &m),
            }
            match shared.read().subscriber(id) {
                Some(s) => to_json(s),
                None => err(404, "no such subscriber"),
            }
        }
        (&Method::DELETE, ["subscribers", id, "dns", pbx, dn]) => {
            match (id.parse::<i64>(), pbx.parse::<i64>()) {
                (Ok(id), Ok(pbx)) if shared.operator_remove_dn(id, pbx, dn) => {
                    ok(&json!({"status": "ok"}))
                }
                _ => err(404, "no such subscriber or number"),
            }
        }
        (&Method::DELETE, ["subscribers", id]) => match id.parse::<i64>() {
            Ok(id) if shared.operator_remove(id) => ok(&json!({"status": "ok"})),
            _ => err(404, "no such subscriber"),
        },
        _ => err(404, "unknown control route; see docs/sim.md"),
    }
}

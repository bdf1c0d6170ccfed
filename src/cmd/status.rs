//! `tariscope-sync status`: what ran, how it went, what runs now and in which process
//! (from the jobs' locks), what waits.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::out::Out;
use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::Exit;
use crate::scheduler::next_fire;
use crate::store::{OutboxState, Store, StoreError};
use crate::sync::Job;
use crate::{errln, outln};

/// Collects the status as JSON (also the source of the text form).
pub async fn collect(config: &Config, store: &Store, clock: Clock) -> Result<Value, StoreError> {
    let now = clock.now();
    let mut jobs = Vec::new();
    for job in Job::ALL {
        let settings = &config.jobs[&job];
        let last = store.last_run(job.as_str()).await?;
        let next = settings
            .cron
            .as_ref()
            .filter(|_| settings.enabled)
            .and_then(|c| next_fire(c, config.timezone, now));
        let days = match &last {
            Some(r) => store.summary_days(r.id).await?,
            None => None,
        };
        let age = last
            .as_ref()
            .and_then(|r| r.ended_at.as_deref().or(Some(r.started_at.as_str())))
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| (now - t.to_utc()).num_seconds());
        // Which process runs the job now, from its lock beside the mirror.
        let running = crate::lock::holder(&config.mirror.lock_base(), job.as_str())
            .ok()
            .flatten();
        jobs.push(json!({
            "job": job.as_str(),
            "running": running,
            "enabled": settings.enabled,
            "schedule": settings.schedule,
            "next_run": next.map(|t: DateTime<Utc>| t.to_rfc3339()),
            "last_run": last.as_ref().map(|r| json!({
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "outcome": r.outcome.as_str(),
                "age_secs": age,
                "fetched": r.counts.fetched,
                "inserted": r.counts.inserted,
                "updated": r.counts.updated,
                "removed": r.counts.removed,
                "unchanged": r.counts.unchanged,
                "errors": r.counts.errors,
                "numbers": r.counts.numbers,
                "error": r.error,
                "summary_days": days.map(|d| json!({
                    "fetched": d.fetched,
                    "derived": d.derived,
                    "bisected": d.bisected,
                    "stretches_bisected": d.stretches,
                    "every_day_subscribers": d.every_day,
                })),
            })),
        }));
    }
    let waiting = store
        .outbox_in(&[
            OutboxState::Pending,
            OutboxState::Sent,
            OutboxState::Ambiguous,
            OutboxState::Failed,
            OutboxState::Terminal,
        ])
        .await?;
    let outbox: Vec<Value> = waiting
        .iter()
        .map(|e| json!({"id": e.id, "key": e.key, "op": e.op, "state": e.state.as_str(), "attempts": e.attempts, "last_error": e.last_error}))
        .collect();
    let conflicts: Vec<Value> = store
        .conflicts()
        .await?
        .into_iter()
        .filter(|c| c.resolution == "manual" || c.resolution == "blocked")
        .map(|c| json!({"key": c.key, "subject": c.subject, "subscriber_id": c.subscriber_id, "base": c.base, "local": c.local, "remote": c.remote, "resolution": c.resolution, "reason": c.reason, "since": c.first_seen_at}))
        .collect();
    let rejected: Vec<Value> = store
        .rejected_rows()
        .await?
        .into_iter()
        .map(|s| {
            let r = s.rejection;
            json!({"source": s.source, "row": r.row, "key": r.key, "field": r.field, "value": r.value, "expected": r.expected, "reason": r.reason, "since": s.at})
        })
        .collect();
    let payments = payments_json(store, &waiting).await?;
    Ok(json!({
        "mirror": config.mirror.shown(),
        "wal_bytes": store.wal().map(|w| w.bytes),
        "jobs": jobs,
        "payments": payments,
        "outbox": outbox,
        "open_conflicts": conflicts,
        "rejected_rows": rejected,
    }))
}

/// Desired payments by state (count and amount), and the ambiguous ones with their facts.
async fn payments_json(
    store: &Store,
    open: &[crate::store::OutboxEntry],
) -> Result<Value, StoreError> {
    let states = store.payment_states().await?;
    let mut out = serde_json::Map::new();
    for (state, n, amount) in &states.states {
        out.insert(
            state.to_string(),
            json!({"count": n, "amount": amount.to_string()}),
        );
    }
    out.insert("rejected_in_files".into(), json!(states.rejected_in_files));
    let waiting: Vec<Value> = open
        .iter()
        .filter(|e| e.op == "payment" && e.state == OutboxState::Ambiguous)
        .map(|e| json!({"reference": e.key, "entry": e.id, "subscriber_id": e.subscriber_id, "facts": e.last_error}))
        .collect();
    out.insert("ambiguous_entries".into(), Value::Array(waiting));
    Ok(Value::Object(out))
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn age(secs: &Value) -> String {
    match secs.as_i64() {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s ago"),
        Some(s) if s < 7200 => format!("{}m ago", s / 60),
        Some(s) if s < 172_800 => format!("{}h ago", s / 3600),
        Some(s) => format!("{}d ago", s / 86_400),
    }
}

/// Prints the status; exit 0 unless the mirror cannot be read.
pub async fn run(config: &Config, json_out: bool, out: &mut Out) -> Exit {
    let store = match Store::open_configured(&config.mirror.path, config.mirror.postgres.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            errln!("tariscope-sync status: {e}");
            return Exit::Runtime;
        }
    };
    let status = match collect(config, &store, Clock::system()).await {
        Ok(v) => v,
        Err(e) => {
            errln!("tariscope-sync status: {e}");
            return Exit::Runtime;
        }
    };
    if json_out {
        outln!(
            out,
            "{}",
            serde_json::to_string_pretty(&status).unwrap_or_default()
        );
        return Exit::Ok;
    }
    match status["wal_bytes"].as_u64() {
        Some(b) => outln!(
            out,
            "mirror: {} (WAL {:.1} MiB)",
            s(&status["mirror"]),
            b as f64 / 1048576.0
        ),
        None => outln!(out, "mirror: {}", s(&status["mirror"])),
    }
    outln!(
        out,
        "{:<12} {:<8} {:<10} {:>8} {:>8} {:>8} {:>7} {:>6}  {:<12} next run",
        "job",
        "enabled",
        "outcome",
        "fetched",
        "inserted",
        "updated",
        "removed",
        "errors",
        "last run"
    );
    for j in status["jobs"].as_array().into_iter().flatten() {
        let last = &j["last_run"];
        outln!(
            out,
            "{:<12} {:<8} {:<10} {:>8} {:>8} {:>8} {:>7} {:>6}  {:<12} {}",
            s(&j["job"]),
            s(&j["enabled"]),
            s(&last["outcome"]),
            s(&last["fetched"]),
            s(&last["inserted"]),
            s(&last["updated"]),
            s(&last["removed"]),
            s(&last["errors"]),
            age(&last["age_secs"]),
            s(&j["next_run"])
        );
        if let Some(h) = j["running"].as_object() {
            outln!(
                out,
                "             running now: pid {} on host {} ({}) since {}",
                s(&h["pid"]),
                s(&h["host"]),
                s(&h["mode"]),
                s(&h["since"])
            );
        }
        if s(&j["job"]) == "push" && last.is_object() {
            outln!(
                out,
                "             push: created {}, updated {}, numbers {} (writes done by the run)",
                s(&last["inserted"]),
                s(&last["updated"]),
                s(&last["numbers"])
            );
        }
        let days = &last["summary_days"];
        if days.is_object() {
            outln!(
                out,
                "             summary days: fetched {}, derived {}, bisected {} ({} stretches), subscribers fetched every day {}",
                s(&days["fetched"]),
                s(&days["derived"]),
                s(&days["bisected"]),
                s(&days["stretches_bisected"]),
                s(&days["every_day_subscribers"])
            );
        }
        if let Some(err) = last["error"].as_str() {
            outln!(out, "             last error: {err}");
        }
    }
    let p = &status["payments"];
    outln!(
        out,
        "\npayments: posted {} ({}), pending {} ({}), ambiguous {} ({}), rejected {} ({}) + {} rejected in imported files",
        s(&p["posted"]["count"]),
        s(&p["posted"]["amount"]),
        s(&p["pending"]["count"]),
        s(&p["pending"]["amount"]),
        s(&p["ambiguous"]["count"]),
        s(&p["ambiguous"]["amount"]),
        s(&p["rejected"]["count"]),
        s(&p["rejected"]["amount"]),
        s(&p["rejected_in_files"])
    );
    let mut section = |title: &str, items: &Value, line: &dyn Fn(&Value) -> String| {
        let list = items.as_array().cloned().unwrap_or_default();
        outln!(out, "\n{title}: {}", list.len());
        for item in list.iter().take(50) {
            outln!(out, "  {}", line(item));
        }
        if list.len() > 50 {
            outln!(out, "  ... and {} more (use --json)", list.len() - 50);
        }
    };
    section(
        "payments waiting for a person (tariscope-sync resolve REFERENCE --landed PAYMENTID | --not-landed)",
        &p["ambiguous_entries"],
        &|e| {
            format!(
                "{} (subscriber {}): {}",
                s(&e["reference"]),
                s(&e["subscriber_id"]),
                s(&e["facts"])
            )
        },
    );
    section("outbox entries not done", &status["outbox"], &|e| {
        format!(
            "#{} {} {} {} (attempts {}): {}",
            s(&e["id"]),
            s(&e["key"]),
            s(&e["op"]),
            s(&e["state"]),
            s(&e["attempts"]),
            s(&e["last_error"])
        )
    });
    section("open conflicts", &status["open_conflicts"], &|c| {
        format!(
            "{} {} [{}]: {} (base {}, local {}, remote {})",
            s(&c["key"]),
            s(&c["subject"]),
            s(&c["resolution"]),
            s(&c["reason"]),
            s(&c["base"]),
            s(&c["local"]),
            s(&c["remote"])
        )
    });
    section(
        "rejected desired rows (not pushed until fixed)",
        &status["rejected_rows"],
        &|r| {
            let at = match r["row"].as_u64() {
                Some(0) | None => s(&r["source"]),
                Some(n) => format!("{} row {n}", s(&r["source"])),
            };
            format!("{at}: {} (since {})", s(&r["reason"]), s(&r["since"]))
        },
    );
    Exit::Ok
}

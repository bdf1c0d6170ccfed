//! `tariscope-sync plan`: what the next push would do, computed by the same planner from the
//! same inputs, and the desired rows it would not plan because they fail the check
//! (`sync::validate`); sends nothing.

use super::out::Out;
use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::Exit;
use crate::store::Store;
use crate::sync::fields::Fields;
use crate::sync::plan::{Op, Resolution};
use crate::sync::push::{PaymentPlan, plan_now};
use crate::{errln, outln};

fn show(fields: &Fields) -> String {
    fields
        .iter()
        .map(|(f, v)| format!("{}={v:?}", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counts per operation kind: (create, update, dnadd, link, conflicts open).
pub fn counts(ops: &[Op]) -> [(&'static str, usize); 5] {
    let mut c = [
        ("create", 0),
        ("update", 0),
        ("dnadd", 0),
        ("link", 0),
        ("open conflicts", 0),
    ];
    for op in ops {
        match op {
            Op::Create { follow_up, dns, .. } => {
                c[0].1 += 1;
                c[2].1 += dns.len();
                c[1].1 += usize::from(!follow_up.is_empty());
            }
            Op::Update { .. } => c[1].1 += 1,
            Op::DnAdd { .. } => c[2].1 += 1,
            Op::Link { .. } => c[3].1 += 1,
            Op::Conflict(x) if matches!(x.resolution, Resolution::Manual | Resolution::Blocked) => {
                c[4].1 += 1
            }
            _ => {}
        }
    }
    c
}

/// The payments part of the plan: what would be posted, what waits, what is refused.
fn show_payments(p: &PaymentPlan, limit: usize, out: &mut Out) {
    let total: rust_decimal::Decimal = p.post.iter().map(|(_, v)| v.row.amount).sum();
    outln!(
        out,
        "\nPayments a push would post (accounts.payment, each reference once): {} ({total})",
        p.post.len()
    );
    for (id, v) in p.post.iter().take(limit) {
        let r = &v.row;
        outln!(
            out,
            "  post {}: subscriber #{id}, {} on {}, type {}{}",
            r.reference,
            r.amount,
            r.day,
            r.kind,
            r.bank
                .as_ref()
                .map(|b| format!(", bank {b}"))
                .unwrap_or_default()
        );
    }
    if !p.waiting.is_empty() {
        outln!(
            out,
            "  waiting for their desired subscriber to be created or linked: {}",
            p.waiting.len()
        );
    }
    if !p.ambiguous.is_empty() {
        outln!(
            out,
            "  ambiguous, not sent until a person resolves them (tariscope-sync status): {}",
            p.ambiguous.join(", ")
        );
    }
    for r in p.checked.rejected.iter().take(limit) {
        outln!(out, "  rejected: {}", r.rejection.reason);
    }
}

pub async fn run(config: &Config, limit: usize, out: &mut Out) -> Exit {
    let store = match Store::open_configured(&config.mirror.path, config.mirror.postgres.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            errln!("tariscope-sync plan: {e}");
            return Exit::Runtime;
        }
    };
    let planned = match plan_now(&store, &config.push_options(Clock::system())).await {
        Ok(p) => p,
        Err(e) => {
            errln!("tariscope-sync plan: {e}");
            return Exit::Runtime;
        }
    };
    let ops = &planned.ops;
    outln!(out, "A push now would send (requests to Tariscope):");
    for (name, n) in counts(ops) {
        outln!(out, "  {name:<15} {n}");
    }
    let shown: Vec<&Op> = ops
        .iter()
        .filter(|o| !matches!(o, Op::AdvanceBase { .. } | Op::DnBase { .. }))
        .take(limit)
        .collect();
    if !shown.is_empty() {
        outln!(out, "\nFirst {} operation(s):", shown.len());
    }
    for op in shown {
        let line = match op {
            Op::Create {
                key,
                fields,
                follow_up,
                dns,
            } => format!(
                "create {key}: {}{}{}",
                show(fields),
                if follow_up.is_empty() {
                    String::new()
                } else {
                    format!("; then update {}", show(follow_up))
                },
                if dns.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; then dnadd {}",
                        dns.iter()
                            .map(|d| format!("{}/{}", d.pbx_id, d.dn))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                }
            ),
            Op::Update { key, id, changes } => format!("update {key} (#{id}): {}", show(changes)),
            Op::DnAdd { key, id, dn } => format!("dnadd {key} (#{id}): {}/{}", dn.pbx_id, dn.dn),
            Op::Link { key, id, .. } => format!("link {key} to existing subscriber #{id}"),
            Op::AdvanceBase { .. } | Op::DnBase { .. } => continue,
            Op::Conflict(c) => format!(
                "conflict {} {} [{:?}]: {}",
                c.key,
                c.subject(),
                c.resolution,
                c.reason
            ),
        };
        outln!(out, "  {line}");
    }
    show_payments(&planned.payments, limit, out);
    let rejected = &planned.rejected;
    if !rejected.is_empty() {
        let rows: std::collections::BTreeSet<_> =
            rejected.iter().map(|r| &r.rejection.key).collect();
        outln!(
            out,
            "\nRejected desired rows (not planned, nothing sent for them until they are fixed): {} row(s), {} problem(s)",
            rows.len(),
            rejected.len()
        );
        for r in rejected.iter().take(limit) {
            outln!(out, "  {}: {}", r.table, r.rejection.reason);
        }
    }
    Exit::Ok
}

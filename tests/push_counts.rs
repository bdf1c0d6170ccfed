//! Push counts add up (issue 12, item 6): every write the outbox holds as done is counted
//! once in the run's report and in `job_runs`, whatever path finished it (an answer, a
//! look-up after a lost answer, a follow-up update of a create).

mod backends;
mod push_support;

use push_support::*;
use tariscope_sync::sim::{Fault, FaultPlan};
use tariscope_sync::store::{OutboxEntry, OutboxState, Store, pg};
use tariscope_sync::sync::plan::ConflictPolicy;
use tariscope_sync::sync::push::PushReport;

/// Done entries with an id above `after`: (create, adopted creates, update, dnadd).
async fn done_since(store: &Store, after: i64) -> (u64, u64, u64, u64) {
    let done: Vec<OutboxEntry> = store
        .outbox_in(&[OutboxState::Done])
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.id > after)
        .collect();
    let of = |op: &str| done.iter().filter(|e| e.op == op).count() as u64;
    let adopted = done
        .iter()
        .filter(|e| e.op == "create" && e.result.as_deref().is_some_and(|r| r.contains("adopted")))
        .count() as u64;
    (of("create"), adopted, of("update"), of("dnadd"))
}

async fn last_id(store: &Store) -> i64 {
    let all = store
        .outbox_in(&[
            OutboxState::Pending,
            OutboxState::Sent,
            OutboxState::Done,
            OutboxState::Failed,
            OutboxState::Ambiguous,
            OutboxState::Terminal,
        ])
        .await
        .unwrap();
    all.iter().map(|e| e.id).max().unwrap_or(0)
}

async fn assert_counts_match(store: &Store, report: &PushReport, after: i64) {
    let (create, adopted, update, dnadd) = done_since(store, after).await;
    assert_eq!(
        (
            report.created,
            report.adopted,
            report.updated,
            report.dns_added
        ),
        (create, adopted, update, dnadd),
        "report against the outbox: {report:?}"
    );
    let run = store
        .job_runs("push")
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == report.run_id)
        .unwrap();
    assert_eq!(
        (run.counts.inserted, run.counts.updated, run.counts.numbers),
        (create, update, dnadd),
        "job_runs against the outbox: {run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_counts_equal_the_outbox() {
    for backend in backends::backends().await {
        let sim = sim().await;
        let client = client(&sim);
        let store = backends::on(&backend);
        pull(&client, &store).await;
        let (dep, pbx) = department_and_pbx(&sim);
        const N: usize = 30;
        import(&store, &desired_csv(N, dep, pbx)).await;
        // Deterministic lost answers: every third create and every fourth dnadd and update is
        // committed, then its connection dropped (settled by look-ups in the same run).
        let lost = |n| Fault {
            drop_after_commit_rate: 1.0,
            every_nth: n,
            ..Fault::default()
        };
        let mut plan = FaultPlan::default();
        plan.methods.insert("subscriber.create".into(), lost(3));
        plan.methods.insert("subscriber.dnadd".into(), lost(4));
        plan.methods.insert("subscriber.update".into(), lost(4));
        sim.set_faults(plan);
        let opts = options(ConflictPolicy::RemoteWins);
        let first = push(&client, &store, &opts).await;
        assert_eq!(first.failed, 0, "{first:?}");
        assert_eq!(
            first.created, N as u64,
            "creates, adopted ones included: {first:?}"
        );
        assert_eq!(
            first.adopted,
            N as u64 / 3,
            "every third create was adopted: {first:?}"
        );
        assert_eq!(
            first.updated, N as u64,
            "each create's follow-up update: {first:?}"
        );
        assert_eq!(
            first.dns_added,
            (0..N).map(|i| (i % 3 + 1) as u64).sum::<u64>()
        );
        assert_counts_match(&store, &first, 0).await;

        // Plain updates of linked rows in a second run.
        let after = last_id(&store).await;
        let edited = desired_csv(N, dep, pbx).replace("Vulytsia 1,", "Vulytsia 1a,");
        import(&store, &edited).await;
        let second = push(&client, &store, &opts).await;
        assert_eq!((second.created, second.updated), (0, 1), "{second:?}");
        assert_counts_match(&store, &second, after).await;
        assert_exactly_once(&sim, N, pbx);
    }
}

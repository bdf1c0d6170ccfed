//! Push acceptance: operator edits in Tariscope survive, conflicts are recorded, `plan`
//! predicts the push, rejected rows do not block valid ones.

mod backends;
mod push_support;

use push_support::*;
use tariscope_sync::store::{Store, pg};
use tariscope_sync::sync::import::{Format, parse};
use tariscope_sync::sync::plan::{ConflictPolicy, Op};
use tariscope_sync::sync::push::plan_now;

fn street_of(sim: &tariscope_sync::sim::SimHandle, acc: &str) -> Option<String> {
    sim.state()
        .subscribers
        .iter()
        .find(|s| s.account_number.as_deref() == Some(acc))
        .and_then(|s| s.street.clone())
}

fn id_of(sim: &tariscope_sync::sim::SimHandle, acc: &str) -> i64 {
    sim.state()
        .subscribers
        .iter()
        .find(|s| s.account_number.as_deref() == Some(acc))
        .unwrap()
        .id
}

/// Creates 3 desired subscribers in `store`, pushes, pulls; returns (sim, client, store, csv).
async fn synced(
    store: Store,
) -> (
    tariscope_sync::sim::SimHandle,
    tariscope_sync::api::TariscopeClient,
    Store,
    String,
) {
    let sim = sim().await;
    let client = client(&sim);
    pull(&client, &store).await;
    let (dep, pbx) = department_and_pbx(&sim);
    let csv = desired_csv(3, dep, pbx);
    import(&store, &csv).await;
    let r = push(&client, &store, &options(ConflictPolicy::RemoteWins)).await;
    assert_eq!(r.created, 3, "{r:?}");
    pull(&client, &store).await;
    (sim, client, store, csv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_edits_survive_remote_wins_and_manual() {
    for policy in [ConflictPolicy::RemoteWins, ConflictPolicy::Manual] {
        for backend in backends::backends().await {
            let (sim, client, store, csv) = synced(backends::on(&backend)).await;
            // An operator edits crm-0000's street in Tariscope; locally nothing changed.
            assert!(sim.operator_update(id_of(&sim, "ACC-0"), "street", Some("Operator Street 1")));
            // Both edited crm-0001's street differently.
            assert!(sim.operator_update(id_of(&sim, "ACC-1"), "street", Some("Operator Street 2")));
            import(&store, &csv.replace("Vulytsia 1,", "Local Street 2,")).await;
            pull(&client, &store).await;
            sim.reset_counters();
            let r = push(&client, &store, &options(policy)).await;
            assert_eq!(
                sim.request_count("subscriber.update"),
                0,
                "{policy:?}: nothing pushed: {r:?}"
            );
            assert_eq!(
                street_of(&sim, "ACC-0").as_deref(),
                Some("Operator Street 1")
            );
            assert_eq!(
                street_of(&sim, "ACC-1").as_deref(),
                Some("Operator Street 2")
            );
            let conflicts = store.conflicts().await.unwrap();
            let c = conflicts
                .iter()
                .find(|c| c.key == "crm-0001" && c.subject == "street");
            let c = c.unwrap_or_else(|| panic!("{policy:?}: conflict recorded: {conflicts:?}"));
            assert_eq!(c.local.as_deref(), Some("Local Street 2"));
            assert_eq!(c.remote.as_deref(), Some("Operator Street 2"));
            assert_eq!(c.base.as_deref(), Some("Vulytsia 1"));
            let expect = if policy == ConflictPolicy::Manual {
                "manual"
            } else {
                "keep-remote"
            };
            assert_eq!(c.resolution, expect);
            assert!(
                !conflicts.iter().any(|c| c.key == "crm-0000"),
                "a remote-only edit is no conflict"
            );
            // Pushing again changes nothing either.
            sim.reset_counters();
            push(&client, &store, &options(policy)).await;
            assert_eq!(writes(&sim), 0, "{policy:?}");
            assert_eq!(
                street_of(&sim, "ACC-1").as_deref(),
                Some("Operator Street 2")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_wins_pushes_and_local_only_edits_are_pushed() {
    for backend in backends::backends().await {
        let (sim, client, store, csv) = synced(backends::on(&backend)).await;
        assert!(sim.operator_update(id_of(&sim, "ACC-1"), "street", Some("Operator Street 2")));
        let edited = csv
            .replace("Vulytsia 1,", "Local Street 2,")
            .replace("Vulytsia 2,", "Local Street 3,");
        import(&store, &edited).await;
        pull(&client, &store).await;
        let r = push(&client, &store, &options(ConflictPolicy::LocalWins)).await;
        assert_eq!((r.updated, r.failed), (2, 0), "{r:?}");
        assert_eq!(street_of(&sim, "ACC-1").as_deref(), Some("Local Street 2"));
        assert_eq!(street_of(&sim, "ACC-2").as_deref(), Some("Local Street 3"));
    }
}

/// What `plan` prints per operation: (create, update, dnadd, link, open conflicts).
fn predicted(ops: &[Op]) -> [usize; 5] {
    tariscope_sync::cmd::plan::counts(ops).map(|(_, n)| n)
}

/// Requests the emulator received: (create, update, dnadd).
fn sent(sim: &tariscope_sync::sim::SimHandle) -> [usize; 3] {
    ["subscriber.create", "subscriber.update", "subscriber.dnadd"]
        .map(|m| sim.request_count(m) as usize)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_predicts_the_push() {
    for backend in backends::backends().await {
        let sim = sim().await;
        let client = client(&sim);
        let store = backends::on(&backend);
        pull(&client, &store).await;
        let (dep, pbx) = department_and_pbx(&sim);
        const N: usize = 25;
        import(&store, &desired_csv(N, dep, pbx)).await;
        let opts = options(ConflictPolicy::RemoteWins);

        // New rows: a create each, its follow-up update (the street), and 1-3 numbers.
        let ops = plan_now(&store, &opts).await.unwrap().ops;
        let numbers: usize = (0..N).map(|i| i % 3 + 1).sum();
        assert_eq!(predicted(&ops), [N, N, numbers, 0, 0], "{ops:?}");
        sim.reset_counters();
        let r = push(&client, &store, &opts).await;
        assert_eq!(sent(&sim), [N, N, numbers]);
        assert_eq!((r.created, r.updated, r.dns_added), (25, 25, 49));

        // Linked rows: a changed street is one update, a new number one dnadd; a row whose
        // account number matches an existing subscriber is linked, not created.
        let existing = sim.state().subscribers[0].clone();
        let acc = existing.account_number.clone().unwrap();
        let mut csv = desired_csv(N, dep, pbx)
            .replace("Vulytsia 3,", "Vulytsia 3b,")
            .replace("Vulytsia 4,", "Vulytsia 4b,")
            .replace(
                &format!("{pbx}/7000050"),
                &format!("{pbx}/7000050;{pbx}/7999991"),
            );
        csv.push_str(&format!(
            "crm-link,{},{},0,{acc},,\n",
            existing.fullname, existing.department_id
        ));
        import(&store, &csv).await;
        let ops = plan_now(&store, &opts).await.unwrap().ops;
        assert_eq!(predicted(&ops), [0, 2, 1, 1, 0], "{ops:?}");
        sim.reset_counters();
        let r = push(&client, &store, &opts).await;
        assert_eq!(sent(&sim), [0, 2, 1]);
        assert_eq!((r.linked, r.updated, r.dns_added), (1, 2, 1), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_rows_keep_their_reason_and_do_not_block_valid_rows() {
    for backend in backends::backends().await {
        let sim = sim().await;
        let client = client(&sim);
        let store = backends::on(&backend);
        pull(&client, &store).await;
        let (dep, pbx) = department_and_pbx(&sim);
        let csv = format!(
            "key,fullname,departmentid,accountnumber,birthday,dns\n\
             ok-1,Valid Person,{dep},ACC-V1,,{pbx}/5550001\n\
             bad-1,,{dep},ACC-B1,,\n\
             bad-2,Bad Date,{dep},ACC-B2,31.12.1990,\n\
             bad-3,Bad Number,{dep},ACC-B3,,{pbx}/55A\n"
        );
        let batch = parse(&csv, Format::Csv).unwrap();
        let counts = store
            .import_desired(batch, "mixed.csv".into(), "2025-05-20T10:00:00Z".into())
            .await
            .unwrap();
        assert_eq!((counts.inserted, counts.rejected), (1, 3));
        let rejected = store.rejected_rows().await.unwrap();
        let reasons: Vec<_> = rejected
            .iter()
            .map(|s| {
                let r = &s.rejection;
                (r.key.clone().unwrap_or_default(), r.reason.clone())
            })
            .collect();
        assert!(reasons[0].1.contains("fullname"), "{reasons:?}");
        assert!(reasons[1].1.contains("birthday"), "{reasons:?}");
        assert!(reasons[2].1.contains("phone number"), "{reasons:?}");
        let r = push(&client, &store, &options(ConflictPolicy::RemoteWins)).await;
        assert_eq!((r.created, r.dns_added, r.failed), (1, 1, 0), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_outside_the_pull_scope_are_not_taken_for_removed() {
    for backend in backends::backends().await {
        use tariscope_sync::sim::{DatasetConfig, SimConfig, SimHandle};
        let sim = SimHandle::start(SimConfig {
            dataset: DatasetConfig {
                seed: 3,
                nodes: 2,
                departments_per_node: 2,
                subscribers: 20,
                days: 3,
                end_date: Some(today()),
            },
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let client = client(&sim);
        let store = backends::on(&backend);
        let state = sim.state();
        // Desired subscriber in node 2, while the pull scope is node 1 only.
        let dep = state
            .departments
            .iter()
            .find(|d| d.node_id == 2)
            .unwrap()
            .id;
        let pbx = state.pbxs.iter().find(|p| p.node_id == 2).unwrap().id;
        pull(&client, &store).await;
        import(&store, &desired_csv(2, dep, pbx)).await;
        let opts = options(ConflictPolicy::RemoteWins);
        assert_eq!(push(&client, &store, &opts).await.created, 2);
        pull(&client, &store).await; // tombstones the two: node 2 is not in scope
        sim.reset_counters();
        let again = push(&client, &store, &opts).await;
        assert_eq!(writes(&sim), 0, "{again:?}");
        let conflicts = store.conflicts().await.unwrap();
        assert!(
            conflicts.is_empty(),
            "not reported as removed: {conflicts:?}"
        );
        // A subscriber really removed in Tariscope is reported as such.
        let id = store.desired_subscribers().await.unwrap()[0]
            .tariscope_id
            .unwrap();
        assert!(sim.operator_remove(id));
        pull(&client, &store).await;
        push(&client, &store, &opts).await;
        let conflicts = store.conflicts().await.unwrap();
        assert!(
            conflicts
                .iter()
                .any(|c| c.reason.contains("removed in Tariscope")),
            "{conflicts:?}"
        );
    }
}

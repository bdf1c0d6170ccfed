//! Numbers pushed once stay pushed, on every kind of server (issue 19): records that show a
//! subscriber's DNs or carry none, and a repeated `dnadd` refused with 409 or accepted as a
//! second assignment. Assignments are counted on the emulator, not in our tables.

mod backends;
mod push_support;

use push_support::*;
use tariscope_sync::model::DnListing;
use tariscope_sync::sim::{Fault, FaultPlan};
use tariscope_sync::store::{OutboxState, Store, pg};
use tariscope_sync::sync::plan::{ConflictPolicy, Op};
use tariscope_sync::sync::push::plan_now;

const ROWS: usize = 24;

fn total_dns(n: usize) -> u64 {
    (0..n).map(|i| (i % 3 + 1) as u64).sum()
}

/// 20 %, deterministic: every fifth dnadd is committed, then its connection is dropped.
fn a_fifth_of_dnadd_answers_lost() -> FaultPlan {
    let mut plan = FaultPlan::default();
    let lost = Fault {
        drop_after_commit_rate: 1.0,
        every_nth: 5,
        ..Fault::default()
    };
    plan.methods.insert("subscriber.dnadd".into(), lost);
    plan
}

fn expected_listing(records_without_dns: bool) -> DnListing {
    if records_without_dns {
        DnListing::NotShown
    } else {
        DnListing::Shown
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_push_sends_no_dnadd_on_every_kind_of_server() {
    for (without_dns, duplicates) in DN_SERVERS {
        for backend in backends::backends().await {
            let case =
                format!("records without DNs {without_dns}, duplicates accepted {duplicates}");
            let sim = sim_with(dn_server(without_dns, duplicates)).await;
            let client = client(&sim);
            let store = backends::on(&backend);
            pull(&client, &store).await;
            assert_eq!(
                store.dn_listing().await.unwrap().map(|o| o.value),
                Some(expected_listing(without_dns)),
                "{case}: the pull saw what the records show"
            );
            let (dep, pbx) = department_and_pbx(&sim);
            import(&store, &desired_csv(ROWS, dep, pbx)).await;
            let opts = options(ConflictPolicy::RemoteWins);
            let first = push(&client, &store, &opts).await;
            assert_eq!(
                (first.created, first.failed),
                (ROWS as u64, 0),
                "{case}: {first:?}"
            );
            assert_eq!(first.dns_added, total_dns(ROWS), "{case}");
            assert_exactly_once(&sim, ROWS, pbx);

            // The scheduled pull in between: on a server without DNs the mirror learns no numbers.
            pull(&client, &store).await;
            let planned = plan_now(&store, &opts).await.unwrap();
            let dnadds: Vec<_> = planned
                .ops
                .iter()
                .filter(|o| matches!(o, Op::DnAdd { .. }))
                .collect();
            assert!(
                dnadds.is_empty(),
                "{case}: plan still lists {} dnadd",
                dnadds.len()
            );
            sim.reset_counters();
            let second = push(&client, &store, &opts).await;
            assert_eq!(
                sim.request_count("subscriber.dnadd"),
                0,
                "{case}: the second push sent dnadd: {second:?}"
            );
            assert_eq!(writes(&sim), 0, "{case}: {second:?}");
            assert_exactly_once(&sim, ROWS, pbx);
            sim.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_dnadd_answers_leave_each_number_assigned_exactly_once() {
    for (without_dns, duplicates) in DN_SERVERS.into_iter().rev() {
        for backend in backends::backends().await {
            let case =
                format!("records without DNs {without_dns}, duplicates accepted {duplicates}");
            let sim = sim_with(dn_server(without_dns, duplicates)).await;
            let client = client(&sim);
            let store = backends::on(&backend);
            pull(&client, &store).await;
            let (dep, pbx) = department_and_pbx(&sim);
            import(&store, &desired_csv(ROWS, dep, pbx)).await;
            let plan = a_fifth_of_dnadd_answers_lost();
            sim.set_faults(plan);
            let opts = options(ConflictPolicy::RemoteWins);
            push(&client, &store, &opts).await;
            push(&client, &store, &opts).await;
            let dnadds = store
                .outbox_in(&[
                    OutboxState::Done,
                    OutboxState::Ambiguous,
                    OutboxState::Failed,
                    OutboxState::Sent,
                ])
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.op == "dnadd")
                .collect::<Vec<_>>();
            let unknown = dnadds
                .iter()
                .filter(|e| {
                    e.last_error
                        .as_deref()
                        .is_some_and(|m| m.contains("unknown"))
                })
                .count();
            assert!(unknown > 0, "{case}: the fault fired");
            let by_hand = settle_unknown_dnadds_by_hand(&sim, &store).await;
            if without_dns {
                // Nothing can look a number up: each unknown outcome waits for a person.
                assert_eq!(
                    by_hand, unknown,
                    "{case}: every unknown outcome waits for a person"
                );
            } else {
                assert_eq!(by_hand, 0, "{case}: look-ups settle every unknown outcome");
            }
            sim.clear_faults();
            let after = push(&client, &store, &opts).await;
            assert_eq!(after.failed, 0, "{case}: {after:?}");
            assert_exactly_once(&sim, ROWS, pbx);
            sim.reset_counters();
            push(&client, &store, &opts).await;
            assert_eq!(
                sim.request_count("subscriber.dnadd"),
                0,
                "{case}: nothing is left to send"
            );
            assert!(store.outbox_open().await.unwrap().is_empty(), "{case}");
            sim.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_removing_a_number_is_not_overwritten() {
    for policy in [ConflictPolicy::RemoteWins, ConflictPolicy::Manual] {
        for backend in backends::backends().await {
            let sim = sim().await;
            let client = client(&sim);
            let store = backends::on(&backend);
            pull(&client, &store).await;
            let (dep, pbx) = department_and_pbx(&sim);
            import(&store, &desired_csv(3, dep, pbx)).await;
            let opts = options(policy);
            push(&client, &store, &opts).await;
            let desired = store.desired_subscribers().await.unwrap();
            let row = desired.iter().find(|d| d.dns.len() == 3).unwrap();
            let id = row.tariscope_id.unwrap();
            let gone = &row.dns[0];
            assert!(sim.operator_remove_dn(id, pbx, &gone.dn));
            pull(&client, &store).await;
            sim.reset_counters();
            let report = push(&client, &store, &opts).await;
            assert_eq!(
                sim.request_count("subscriber.dnadd"),
                0,
                "{policy:?}: the removed number was added again: {report:?}"
            );
            assert_eq!(assignments(&sim.state(), pbx, &gone.dn), 0, "{policy:?}");
            let conflicts = store.conflicts().await.unwrap();
            let subject = format!("dn:{pbx}/{}", gone.dn);
            let c = conflicts
                .iter()
                .find(|c| c.subject == subject)
                .unwrap_or_else(|| panic!("{policy:?}: no conflict for {subject}: {conflicts:?}"));
            let expected = match policy {
                ConflictPolicy::Manual => "manual",
                _ => "keep-remote",
            };
            assert_eq!(c.resolution, expected);
            sim.shutdown().await;
        }
    }
}

mod cli_support;

use std::path::Path;
use std::time::{Duration, Instant};

/// A config for `sim` with the mirror in `url` (PostgreSQL), else in `dir/mirror.db`.
fn write_config(
    dir: &Path,
    sim: &tariscope_sync::sim::SimHandle,
    url: Option<&str>,
) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let mirror = match url {
        Some(url) => format!("url = \"{url}\""),
        None => format!("path = \"{}\"", dir.join("mirror.db").display()),
    };
    let text = format!(
        "[api]\nbase_url = \"{}\"\nusername = \"demo\"\npassword = \"demo\"\nrate_per_sec = 0\nconcurrency = 4\n\
         [retry]\nmax_attempts = 2\n\
         [mirror]\n{mirror}\n\
         [scope]\nnodes = [1]\n\
         [jobs.push]\nconcurrency = 2\n\
         [push]\nmax_attempts = 8\n\
         [serve]\nlisten = \"\"\n",
        sim.base_url(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn run_bin(config: &Path, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(cli_support::BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .await
        .unwrap()
}

/// The store the binary with `write_config(dir, _, url)` uses.
async fn open_mirror(dir: &Path, url: Option<&str>) -> Store {
    let (dir, url) = (dir.to_owned(), url.map(str::to_owned));
    tokio::task::spawn_blocking(move || match url {
        Some(url) => Store::open_postgres(&pg::Target::parse(&url, None).unwrap()).unwrap(),
        None => Store::open(dir.join("mirror.db")).unwrap(),
    })
    .await
    .unwrap()
}

/// The real binary, killed with SIGKILL part-way through a push while every fifth `dnadd`
/// loses its answer after committing; then resumed. Counted on the emulator: each number
/// assigned exactly once, on every kind of server, with the mirror in SQLite and (where a
/// cluster can be started) in PostgreSQL (`mirror.url`, a fresh database per case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_killed_mid_way_under_dropped_answers_assigns_each_number_once() {
    let cluster = backends::pg_support::cluster_from_async().await;
    let mut runs = Vec::new();
    for server in DN_SERVERS {
        runs.push((server, None));
        if let Some(c) = &cluster {
            runs.push((server, Some(c.database_from_async())));
        }
    }
    for ((without_dns, duplicates), url) in runs {
        let case = format!(
            "records without DNs {without_dns}, duplicates accepted {duplicates}, on {}",
            if url.is_some() { "postgres" } else { "sqlite" }
        );
        let sim = sim_with(dn_server(without_dns, duplicates)).await;
        let (dep, pbx) = department_and_pbx(&sim);
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &sim, url.as_deref());
        let out = run_bin(&config, &["--run-once", "--jobs", "subscribers"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", cli_support::text(&out));
        let csv = dir.path().join("desired.csv");
        std::fs::write(&csv, desired_csv(ROWS, dep, pbx)).unwrap();
        let out = run_bin(&config, &["import", csv.to_str().unwrap()]).await;
        assert_eq!(out.status.code(), Some(0), "{}", cli_support::text(&out));

        let mut plan = a_fifth_of_dnadd_answers_lost();
        let slow = Fault {
            latency: Duration::from_millis(40),
            ..Fault::default()
        };
        plan.methods.insert("subscriber.create".into(), slow);
        sim.set_faults(plan);
        let mut child = tokio::process::Command::new(cli_support::BIN)
            .arg("--config")
            .arg(&config)
            .args(["--run-once", "--jobs", "push"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while sim.request_count("subscriber.dnadd") < 12 {
            assert!(
                Instant::now() < deadline,
                "{case}: the push never got going"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let created = sim.request_count("subscriber.create");
        assert!(
            created < ROWS as u64,
            "{case}: killed part-way ({created} creates sent)"
        );

        // Resumed under the same faults, then whatever waits for a person is settled by
        // hand, then a clean run finishes.
        run_bin(&config, &["--run-once", "--jobs", "push"]).await;
        let store = open_mirror(dir.path(), url.as_deref()).await;
        let by_hand = settle_unknown_dnadds_by_hand(&sim, &store).await;
        assert_eq!(
            by_hand > 0,
            without_dns,
            "{case}: {by_hand} left for a person"
        );
        drop(store);
        sim.clear_faults();
        let out = run_bin(&config, &["--run-once", "--jobs", "push"]).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{case}: {}",
            cli_support::text(&out)
        );
        assert_exactly_once(&sim, ROWS, pbx);
        sim.reset_counters();
        let out = run_bin(&config, &["--run-once", "--jobs", "subscribers,push"]).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{case}: {}",
            cli_support::text(&out)
        );
        assert_eq!(sim.request_count("subscriber.dnadd"), 0, "{case}");
        assert_exactly_once(&sim, ROWS, pbx);

        let doctor = cli_support::text(&run_bin(&config, &["doctor"]).await);
        let says = if without_dns {
            "subscriber records show no numbers"
        } else {
            "subscriber records show their numbers"
        };
        assert!(doctor.contains(says), "{case}: {doctor}");
        sim.shutdown().await;
    }
}

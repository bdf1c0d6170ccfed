//! The daemon and the commands on a PostgreSQL mirror (issue 13), against a real throwaway
//! cluster (tests/pg_support) and the emulator: `--run-once` pulls and pushes exactly once,
//! `status`, `doctor` and `import` work there; two daemons elect one leader; a leader
//! killed in the middle of a push of 500 subscribers is replaced within `ha.takeover_secs`
//! and the emulator holds every subscriber and number once; a paused leader is fenced and
//! steps down when it wakes; a PostgreSQL restart under a running daemon loses and repeats
//! nothing; a SQLite mirror copied to PostgreSQL pushes nothing again. Must not: mock the
//! server.

mod cli_support;
mod deploy_support;
mod pg_support;
mod push_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cli_support::{kill, read_until, run, spawn, text};
use tariscope_sync::sim::{DatasetConfig, Fault, SimConfig, SimHandle};

/// Takeover time of the HA tests (the default is 15 s).
const TAKEOVER_SECS: u64 = 3;

/// A config for `sim` with the mirror at `mirror` (`url = ...` or `path = ...`); only the
/// push job scheduled (every second), the subscribers job yearly, the others off.
fn config(dir: &Path, name: &str, sim: &SimHandle, mirror: &str) -> PathBuf {
    config_with(dir, name, sim, mirror, "0 0 0 1 1 *", "[1]")
}

/// As `config`, the subscribers job on `subscribers` (a six-field cron line), mirroring
/// the nodes `nodes` (a TOML list).
fn config_with(
    dir: &Path,
    name: &str,
    sim: &SimHandle,
    mirror: &str,
    subscribers: &str,
    nodes: &str,
) -> PathBuf {
    let path = dir.join(name);
    let off = ["reference", "payments", "charges", "summaries"]
        .iter()
        .map(|j| format!("[jobs.{j}]\nenabled = false\n"))
        .collect::<String>();
    let text = format!(
        "shutdown_grace_secs = 10\n\
         [api]\nbase_url = \"{}\"\nusername = \"demo\"\npassword = \"demo\"\nrate_per_sec = 1000.0\nconcurrency = 8\n\
         [retry]\nmax_attempts = 2\ninitial_delay_ms = 50\n\
         [mirror]\n{mirror}\n\
         [ha]\ntakeover_secs = {TAKEOVER_SECS}\n\
         [scope]\nnodes = {nodes}\n\
         [serve]\nlisten = \"\"\n\
         [log]\nformat = \"pretty\"\n\
         [jobs.subscribers]\nschedule = \"{subscribers}\"\n\
         [jobs.push]\nschedule = \"* * * * * *\"\n{off}",
        sim.base_url(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary to the end and expects exit 0; its output as text.
async fn run_ok(config: &Path, args: &[&str]) -> String {
    let out = run(config, args).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    text(&out)
}

/// A PostgreSQL query's first column of the first row, as text (on a thread of its own: the
/// blocking client must not run on the test's runtime).
async fn pg_text(url: &str, sql: &str) -> Option<String> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).ok()?;
        let row = c.query_opt(&format!("SELECT ({sql})::text"), &[]).ok()??;
        row.get(0)
    })
    .await
    .unwrap()
}

/// Entries of the outbox not `done` (None while the database cannot be read).
async fn unsettled(url: &str) -> Option<i64> {
    pg_text(url, "SELECT count(*) FROM outbox WHERE state <> 'done'")
        .await?
        .parse()
        .ok()
}

/// Pulls the subscribers and imports `n` desired subscribers with numbers; returns the PBX.
async fn prepare(dir: &Path, config: &Path, sim: &SimHandle, n: usize) -> i64 {
    run_ok(config, &["--run-once", "--jobs", "subscribers"]).await;
    let (dep, pbx) = push_support::department_and_pbx(sim);
    let csv = dir.join("desired.csv");
    std::fs::write(&csv, push_support::desired_csv(n, dep, pbx)).unwrap();
    run_ok(config, &["import", csv.to_str().unwrap()]).await;
    pbx
}

/// Waits until the push is complete: the emulator holds every one of the `n` desired
/// subscribers (`push_support::desired_csv`) with every number, and no outbox entry is open.
/// (Then `assert_exactly_once` checks that nothing is there twice.)
async fn until_drained(sim: &SimHandle, url: &str, n: usize, pbx: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let s = sim.state();
        let missing = (0..n)
            .flat_map(|i| (0..=(i % 3)).map(move |j| format!("7{i:05}{j}")))
            .filter(|dn| push_support::assignments(&s, pbx, dn) == 0)
            .count();
        let left = unsettled(url).await;
        if missing == 0 && left == Some(0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not done within {within:?}: {missing} numbers missing, {left:?} entries open"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct World {
    cluster: pg_support::PgCluster,
    dir: tempfile::TempDir,
    sim: SimHandle,
    url: String,
    config: PathBuf,
}

async fn world() -> Option<World> {
    let cluster = pg_support::cluster_from_async().await?;
    let url = cluster.database_from_async();
    let dir = tempfile::tempdir().unwrap();
    let sim = cli_support::small_sim(31, 5, 3).await;
    let config = config(dir.path(), "config.toml", &sim, &format!("url = \"{url}\""));
    Some(World {
        cluster,
        dir,
        sim,
        url,
        config,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pull_and_push_exactly_once_on_postgres() {
    let Some(w) = world().await else {
        return;
    };
    let pbx = prepare(w.dir.path(), &w.config, &w.sim, 40).await;
    let subscribers: i64 = pg_text(&w.url, "SELECT count(*) FROM subscribers")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(subscribers, 5, "the pull wrote into PostgreSQL");
    run_ok(&w.config, &["--run-once", "--jobs", "push"]).await;
    push_support::assert_exactly_once(&w.sim, 40, pbx);
    let writes = push_support::writes(&w.sim);
    run_ok(&w.config, &["--run-once", "--jobs", "push,subscribers"]).await;
    assert_eq!(
        push_support::writes(&w.sim),
        writes,
        "a second push writes nothing"
    );
    assert_eq!(unsettled(&w.url).await, Some(0));

    let status = run_ok(&w.config, &["status"]).await;
    assert!(status.contains("postgres://postgres@127.0.0.1"), "{status}");
    let out = run(&w.config, &["doctor"]).await;
    let doctor = text(&out);
    assert!(
        doctor.contains("schema version 8 (this build: 8)"),
        "{doctor}"
    );
    assert!(doctor.contains("writable"), "{doctor}");
    run_ok(&w.config, &["plan"]).await;

    // A database a newer release migrated: the jobs and the daemon refuse it, saying what
    // to do, and write nothing.
    let url = w.url.clone();
    tokio::task::spawn_blocking(move || {
        postgres::Client::connect(&url, postgres::NoTls)
            .unwrap()
            .batch_execute("INSERT INTO schema_version (version) VALUES (99)")
            .unwrap()
    })
    .await
    .unwrap();
    let runs = pg_text(&w.url, "SELECT count(*) FROM job_runs").await;
    for args in [&["--run-once", "--jobs", "subscribers"][..], &[]] {
        let out = run(&w.config, args).await;
        let t = text(&out);
        assert!(
            !out.status.success()
                && t.contains("schema version 99")
                && t.contains("upgrade tariscope-sync"),
            "{args:?}: {t}"
        );
    }
    assert_eq!(pg_text(&w.url, "SELECT count(*) FROM job_runs").await, runs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_nothing_is_sent_twice() {
    let Some(w) = world().await else {
        return;
    };
    const N: usize = 500;
    let pbx = prepare(w.dir.path(), &w.config, &w.sim, N).await;
    // Slow writes, so the push is long enough to be killed in the middle.
    slow_writes(&w.sim);
    let (a, _a_err, _a_log) = daemon(&w.config, LEADS).await;
    // The standby serves its endpoints: alive, and ready as a standby.
    let port = cli_support::free_port();
    let b_config = w.dir.path().join("b.toml");
    let text = std::fs::read_to_string(&w.config).unwrap().replace(
        "[serve]\nlisten = \"\"",
        &format!("[serve]\nlisten = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&b_config, text).unwrap();
    let (mut b, mut b_err, mut b_log) = daemon(&b_config, "standing by").await;
    assert!(
        b_log.contains("pid"),
        "the standby names the leader: {b_log}"
    );
    let get = |path: &str| reqwest::get(format!("http://127.0.0.1:{port}{path}"));
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.text().await.unwrap(),
        "role=standby mirror_open=true\n"
    );
    assert_eq!(get("/healthz").await.unwrap().status(), 200);

    until_created(&w.sim, 100).await;
    let killed = Instant::now();
    kill("-KILL", a.id().unwrap());
    read_until(&mut b_err, LEADS, 1, &mut b_log).await;
    let took = killed.elapsed();
    eprintln!("the standby led {took:?} after the leader was killed");
    assert!(took < Duration::from_secs(TAKEOVER_SECS), "{took:?}");
    until_drained(&w.sim, &w.url, N, pbx, Duration::from_secs(120)).await;
    push_support::assert_exactly_once(&w.sim, N, pbx);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tariscope_sync_leader 1"), "{metrics}");
    assert!(
        metrics.contains("tariscope_sync_takeovers_total 1"),
        "{metrics}"
    );
    let ready = get("/readyz").await.unwrap().text().await.unwrap();
    assert!(ready.starts_with("role=leader"), "{ready}");
    kill("-TERM", b.id().unwrap());
    let _ = b.wait().await;
}

/// Slows Tariscope's writes so a push of a few hundred rows takes seconds.
fn slow_writes(sim: &SimHandle) {
    for m in ["subscriber.create", "subscriber.dnadd"] {
        sim.set_method_fault(
            m,
            Fault {
                latency: Duration::from_millis(8),
                ..Fault::default()
            },
        );
    }
}

/// Waits until the emulator has seen `n` creates.
async fn until_created(sim: &SimHandle, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.request_count("subscriber.create") < n {
        assert!(Instant::now() < deadline, "the leader did not push");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A daemon with its stderr, once its log says `what`.
async fn daemon(
    config: &Path,
    what: &str,
) -> (tokio::process::Child, tokio::process::ChildStderr, String) {
    let mut child = spawn(config, &[]);
    let mut err = child.stderr.take().unwrap();
    let mut log = String::new();
    read_until(&mut err, what, 1, &mut log).await;
    (child, err, log)
}

const LEADS: &str = "leading: this daemon runs the jobs";

/// The fencing test of issue 13. Writes whose outbox entry the paused leader had already
/// committed as `sent`, still waiting in its client (rate limiter, concurrency permits)
/// when it was paused, reach the client's fence when it wakes: the fence asks the writer
/// session, which PostgreSQL ended while the process was silent, so they are refused and
/// not sent (before the fence, 1-2 of ~1,200 writes got through in about half the runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_fenced_and_steps_down_when_it_wakes() {
    let Some(w) = world().await else {
        return;
    };
    const N: usize = 300;
    let pbx = prepare(w.dir.path(), &w.config, &w.sim, N).await;
    slow_writes(&w.sim);
    let (a, mut a_err, mut a_log) = daemon(&w.config, LEADS).await;
    let (b, mut b_err, mut b_log) = daemon(&w.config, "standing by").await;
    until_created(&w.sim, 50).await;
    let paused = Instant::now();
    kill("-STOP", a.id().unwrap());
    read_until(&mut b_err, LEADS, 1, &mut b_log).await;
    let took = paused.elapsed();
    eprintln!("the standby led {took:?} after the leader was paused");
    assert!(took < Duration::from_secs(TAKEOVER_SECS), "{took:?}");
    until_drained(&w.sim, &w.url, N, pbx, Duration::from_secs(120)).await;
    let writes = push_support::writes(&w.sim);
    let per_method = |sim: &SimHandle| {
        ["subscriber.create", "subscriber.update", "subscriber.dnadd"].map(|m| sim.request_count(m))
    };
    let before = per_method(&w.sim);
    let entries = pg_text(&w.url, "SELECT count(*) FROM outbox").await;
    let woke = pg_text(&w.url, "now()").await.unwrap();

    kill("-CONT", a.id().unwrap());
    read_until(&mut a_err, "stepped down", 1, &mut a_log).await;
    read_until(&mut a_err, "standing by", 1, &mut a_log).await;
    assert!(a_log.contains("no longer the leader"), "{a_log}");
    // Two more pushes' worth of time: the old leader sends and records nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let recent = pg_text(
        &w.url,
        &format!(
            "SELECT string_agg(id || ' ' || op || ' ' || state || ' ' || key || ' attempts ' || attempts \
         || ' ' || coalesce(last_error, ''), ' | ') FROM outbox WHERE updated_at >= '{woke}'::timestamptz"
        ),
    )
    .await;
    assert_eq!(
        push_support::writes(&w.sim),
        writes,
        "the old leader wrote to Tariscope: create, update, dnadd {before:?} before it woke, {:?} after; \
         outbox entries written in the last 5 s: {recent:?}; its log:\n{a_log}",
        per_method(&w.sim)
    );
    assert_eq!(
        pg_text(&w.url, "SELECT count(*) FROM outbox").await,
        entries
    );
    assert_eq!(unsettled(&w.url).await, Some(0));
    push_support::assert_exactly_once(&w.sim, N, pbx);
    for mut d in [a, b] {
        kill("-TERM", d.id().unwrap());
        let _ = d.wait().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_in_the_middle_of_a_pull_is_replaced_and_the_pull_completes() {
    let Some(cluster) = pg_support::cluster_from_async().await else {
        return;
    };
    let url = cluster.database_from_async();
    let dir = tempfile::tempdir().unwrap();
    // Four nodes listed one after the other, each answer slow: the leader is killed with
    // some nodes written and others not.
    let sim = SimHandle::start(SimConfig {
        dataset: DatasetConfig {
            seed: 32,
            nodes: 4,
            departments_per_node: 1,
            subscribers: 400,
            days: 3,
            end_date: None,
        },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    for m in ["subscriber.list.node", "subscriber.list.department"] {
        sim.set_method_fault(
            m,
            Fault {
                latency: Duration::from_millis(700),
                ..Fault::default()
            },
        );
    }
    let config = config_with(
        dir.path(),
        "config.toml",
        &sim,
        &format!("url = \"{url}\""),
        "*/2 * * * * *",
        "[1, 2, 3, 4]",
    );
    let (a, _a_err, _a_log) = daemon(&config, LEADS).await;
    let (mut b, mut b_err, mut b_log) = daemon(&config, "standing by").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: i64 = pg_text(&url, "SELECT count(*) FROM subscribers")
            .await
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if got >= 100 {
            assert!(
                got < 600,
                "the pull ended before the kill ({got}); slow it down"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the leader did not pull");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed = Instant::now();
    kill("-KILL", a.id().unwrap());
    read_until(&mut b_err, LEADS, 1, &mut b_log).await;
    assert!(killed.elapsed() < Duration::from_secs(TAKEOVER_SECS));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ok = pg_text(
            &url,
            "SELECT count(*) FROM job_runs WHERE job = 'subscribers' AND outcome = 'ok'",
        )
        .await;
        if ok.as_deref().is_some_and(|n| n != "0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no successful pull after the takeover: {b_log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let held = pg_text(
        &url,
        "SELECT count(*) FROM subscribers WHERE removed_at IS NULL",
    )
    .await;
    assert_eq!(
        held.as_deref(),
        Some(sim.state().subscribers.len().to_string().as_str())
    );
    // The killed leader's run was closed as failed by the new leader: no subscribers run
    // but the newest (which may be running now) is left open. (Push runs every second.)
    let left = pg_text(
        &url,
        "SELECT count(*) FROM job_runs WHERE job = 'subscribers' AND outcome = 'running' \
         AND id < (SELECT max(id) FROM job_runs WHERE job = 'subscribers')",
    )
    .await;
    assert_eq!(left.as_deref(), Some("0"));
    kill("-TERM", b.id().unwrap());
    let _ = b.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_a_running_daemon_loses_and_repeats_nothing() {
    let Some(w) = world().await else {
        return;
    };
    const N: usize = 200;
    let pbx = prepare(w.dir.path(), &w.config, &w.sim, N).await;
    slow_writes(&w.sim);
    let (mut a, mut a_err, mut a_log) = daemon(&w.config, LEADS).await;
    until_created(&w.sim, 40).await;
    let cluster = &w.cluster;
    std::thread::scope(|s| s.spawn(|| cluster.restart()).join().unwrap());
    read_until(&mut a_err, LEADS, 1, &mut a_log).await;
    until_drained(&w.sim, &w.url, N, pbx, Duration::from_secs(120)).await;
    push_support::assert_exactly_once(&w.sim, N, pbx);
    kill("-TERM", a.id().unwrap());
    let _ = a.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_mirror_copied_to_postgres_pushes_nothing_again() {
    let Some(w) = world().await else {
        return;
    };
    let sqlite = config(
        w.dir.path(),
        "sqlite.toml",
        &w.sim,
        &format!("path = \"{}\"", w.dir.path().join("mirror.db").display()),
    );
    let pbx = prepare(w.dir.path(), &sqlite, &w.sim, 30).await;
    run_ok(&sqlite, &["--run-once", "--jobs", "push"]).await;
    push_support::assert_exactly_once(&w.sim, 30, pbx);
    run_ok(&sqlite, &["mirror", "copy", "--to", &w.url]).await;
    let writes = push_support::writes(&w.sim);
    run_ok(&w.config, &["--run-once", "--jobs", "subscribers,push"]).await;
    assert_eq!(
        push_support::writes(&w.sim),
        writes,
        "the copy pushed again"
    );
    assert_eq!(unsettled(&w.url).await, Some(0));
}

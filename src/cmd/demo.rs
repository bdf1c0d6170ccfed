//! `tariscope-sync demo`: the whole product in one command, against the emulator in-process.
//!
//! Starts `tariscope-sim` on a free loopback port with a seeded dataset, writes a config for
//! it, runs every job once (progress bars on a terminal), imports a few desired subscribers,
//! pushes them, and prints what is in the mirror and where.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::out::Out;
use crate::clock::Clock;
use crate::daemon::{self, Exit, progress};
use crate::lock::Wait;
use crate::scheduler::RunOutcome;
use crate::sim::{DatasetConfig, SimConfig, SimHandle};
use crate::sync::Job;
use crate::sync::import::{Format, parse};
use crate::{errln, outln};

fn config_text(base_url: &str, mirror: &Path) -> String {
    format!(
        r#"# Written by `tariscope-sync demo`: the emulator it started, demo/demo.
timezone = "Europe/Kyiv"

[api]
base_url = "{base_url}"
username = "demo"
password = "demo"
rate_per_sec = 2000.0
concurrency = 32

[mirror]
path = "{}"

[scope]
nodes = [1, 2]

[jobs.payments]
lookback_days = 3
concurrency = 32

[jobs.charges]
concurrency = 32

[jobs.summaries]
concurrency = 32

[serve]
listen = ""
"#,
        mirror.display()
    )
}

/// Desired subscribers the demo pushes (department and PBX filled in from the dataset).
fn desired_csv(department: i64, pbx: i64) -> String {
    let rows = [
        (
            "demo-001",
            "Hnatiuk Oksana Vasylivna",
            "0",
            "DEMO-1001",
            "Sichovykh Striltsiv",
            "5550101",
        ),
        (
            "demo-002",
            "TOV Karpaty-Lis",
            "1",
            "DEMO-1002",
            "Zelena",
            "5550102;5550103",
        ),
        (
            "demo-003",
            "Lysenko Mykola Ivanovych",
            "0",
            "DEMO-1003",
            "Shevchenka",
            "5550104",
        ),
        (
            "demo-004",
            "KP Mis'ke Svitlo",
            "3",
            "DEMO-1004",
            "Soborna",
            "5550105;5550106;5550107",
        ),
        (
            "demo-005",
            "Romaniuk Iryna Petrivna",
            "4",
            "DEMO-1005",
            "Lesi Ukrainky",
            "5550108",
        ),
    ];
    let mut csv =
        String::from("key,fullname,departmentid,subscribertype,accountnumber,street,house,dns\n");
    for (key, name, kind, acc, street, dns) in rows {
        let dns: Vec<String> = dns.split(';').map(|d| format!("{pbx}/{d}")).collect();
        csv.push_str(&format!(
            "{key},{name},{department},{kind},{acc},{street},1,{}\n",
            dns.join(";")
        ));
    }
    csv
}

pub async fn run(dir: &Path, subscribers: usize, out: &mut Out) -> Exit {
    match run_inner(dir, subscribers, out).await {
        Ok(exit) => exit,
        Err(e) => {
            errln!("tariscope-sync demo: {e}");
            Exit::Runtime
        }
    }
}

async fn run_inner(dir: &Path, subscribers: usize, out: &mut Out) -> Result<Exit, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mirror = dir.join("mirror.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", mirror.display()));
    }
    let sim = SimHandle::start(SimConfig {
        dataset: DatasetConfig {
            subscribers,
            nodes: 2,
            days: 30,
            ..DatasetConfig::default()
        },
        ..SimConfig::default()
    })
    .await
    .map_err(|e| format!("cannot start the emulator: {e}"))?;
    outln!(
        out,
        "emulator (tariscope-sim) listening on {}",
        sim.base_url()
    );

    let config_path = dir.join("tariscope-sync.toml");
    std::fs::write(&config_path, config_text(&sim.base_url(), &mirror))
        .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
    let (config, _) =
        crate::config::load(Some(&config_path), &HashMap::new()).map_err(|e| e.to_string())?;
    outln!(out, "config written to {}", config_path.display());

    let jobs = Arc::new(daemon::open(&config, Clock::system()).map_err(|e| e.to_string())?);
    let pulls: Vec<Job> = Job::ALL.into_iter().filter(|j| *j != Job::Push).collect();
    let stop = CancellationToken::new();
    let bars_stop = CancellationToken::new();
    let bars = progress::spawn_bars(jobs.clone(), Job::ALL.to_vec(), bars_stop.clone());
    let started = std::time::Instant::now();
    let mut summaries = daemon::run_once(&jobs, &pulls, stop.clone(), Wait::No, &|_, _| {}).await;

    let state = sim.state();
    let department = state
        .departments
        .iter()
        .find(|d| d.node_id == 1)
        .map(|d| d.id)
        .ok_or("the dataset has no department")?;
    let pbx = state
        .pbxs
        .iter()
        .find(|p| p.node_id == 1)
        .map(|p| p.id)
        .ok_or("the dataset has no PBX")?;
    let batch = parse(&desired_csv(department, pbx), Format::Csv).map_err(|e| e.to_string())?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    jobs.store
        .import_desired(batch, "demo".into(), now)
        .await
        .map_err(|e| e.to_string())?;
    summaries.extend(daemon::run_once(&jobs, &[Job::Push], stop, Wait::No, &|_, _| {}).await);
    bars_stop.cancel();
    if let Some(b) = bars {
        let _ = b.await;
    }

    outln!(out);
    super::print_summaries(out, &summaries);
    outln!(
        out,
        "\nmirror {} after {:.1} s:",
        mirror.display(),
        started.elapsed().as_secs_f64()
    );
    for (table, n) in jobs.store.table_counts().await.map_err(|e| e.to_string())? {
        outln!(out, "  {table:<20} {n:>8}");
    }
    let created: Vec<String> = jobs
        .store
        .desired_subscribers()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|d| {
            format!(
                "{} -> #{}",
                d.key,
                d.tariscope_id.map_or("?".into(), |i| i.to_string())
            )
        })
        .collect();
    outln!(out, "\npushed to Tariscope: {}", created.join(", "));
    outln!(
        out,
        "\nLook inside: sqlite3 {} 'SELECT id, fullname, accountid FROM subscribers LIMIT 5'\n\
         Status:      cargo run --release -- --config {} status\n\
         (the emulator stopped with this command; start `tariscope-sim` to keep playing)",
        mirror.display(),
        config_path.display()
    );
    sim.shutdown().await;
    // The demo succeeds when every job ran; partial outcomes are reported above.
    let failed = summaries.iter().any(|s| s.outcome == RunOutcome::Failed);
    Ok(if failed { Exit::Runtime } else { Exit::Ok })
}

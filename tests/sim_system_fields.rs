//! The `tariscope.*` system methods as servers answer them (issue 12 item 5): the guide's
//! field names, .NET-style names (`DatabaseVersion`, `BuildDate`, also in the summary), a
//! bare value, a plain-text body. For each emulator variant (`--system-fields`): the client
//! reads every single method and the summary, `doctor` prints the version and database, and
//! the reference job's `system_info` row has no NULL.

use std::process::Stdio;

use tariscope_sync::api::Format;
use tariscope_sync::sim::{SimConfig, SimHandle, SimUser, SystemFields, WireVariant};
use tokio::process::Command;

mod api_support;
use api_support::{client, sim_config, start};

const VARIANTS: [SystemFields; 4] = [
    SystemFields::Documented,
    SystemFields::DotNet,
    SystemFields::Bare,
    SystemFields::Text,
];

/// What the emulator reports (src/sim/handlers/reference.rs).
const VERSION: &str = "4.6.4.1521";
const DATABASE: &str = "4.6.118";
const BUILD: &str = "2024-03-15";
const SERIAL: &str = "TS46-PRV-0042-7731";
const EDITION: &str = "Provider";

fn config(style: SystemFields) -> SimConfig {
    sim_config(WireVariant {
        system_fields: style,
        ..WireVariant::default()
    })
}

#[tokio::test]
async fn every_system_method_is_read_in_every_variant_and_format() {
    for style in VARIANTS {
        let sim = start(config(style)).await;
        for format in [Format::Json, Format::Xml] {
            let c = client(&sim, format);
            let case = format!("{style:?} {format:?}");
            assert_eq!(
                c.version().await.unwrap().as_deref(),
                Some(VERSION),
                "{case}"
            );
            assert_eq!(
                c.database().await.unwrap().as_deref(),
                Some(DATABASE),
                "{case}"
            );
            assert_eq!(c.build().await.unwrap().as_deref(), Some(BUILD), "{case}");
            assert_eq!(c.serial().await.unwrap().as_deref(), Some(SERIAL), "{case}");
            assert_eq!(
                c.edition().await.unwrap().as_deref(),
                Some(EDITION),
                "{case}"
            );
            let info = c.system_info().await.unwrap();
            assert_eq!(info.database.as_deref(), Some(DATABASE), "{case}: {info:?}");
            assert_eq!(info.build.as_deref(), Some(BUILD), "{case}: {info:?}");
            assert_eq!(info.serial.as_deref(), Some(SERIAL), "{case}: {info:?}");
            assert_eq!(info.edition.as_deref(), Some(EDITION), "{case}: {info:?}");
            assert_eq!(info.version.as_deref(), Some(VERSION), "{case}: {info:?}");
        }
    }
}

/// A user who may not call `tariscope.summary`: `system_info` falls back to the single
/// methods, so each single method's shape decides.
#[tokio::test]
async fn without_the_summary_the_single_methods_fill_system_info() {
    for style in VARIANTS {
        let mut cfg = config(style);
        cfg.users = vec![SimUser::with_rights(
            "demo",
            "demo",
            &[
                "tariscope.version",
                "tariscope.database",
                "tariscope.build",
                "tariscope.serial",
                "tariscope.edition",
            ],
        )];
        let sim = start(cfg).await;
        let info = client(&sim, Format::Json).system_info().await.unwrap();
        assert_eq!(info.database.as_deref(), Some(DATABASE), "{style:?}");
        assert_eq!(info.build.as_deref(), Some(BUILD), "{style:?}");
        assert_eq!(info.version.as_deref(), Some(VERSION), "{style:?}");
    }
}

fn write_config(dir: &std::path::Path, sim: &SimHandle) -> std::path::PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nbase_url = \"{}\"\nusername = \"demo\"\npassword = \"demo\"\n\
             rate_per_sec = 0\n[mirror]\npath = \"{}\"\n[scope]\nnodes = [1]\n\
             [serve]\nlisten = \"\"\n[log]\nlevel = \"warn\"\n",
            sim.base_url(),
            dir.join("mirror.db").display()
        ),
    )
    .unwrap();
    config
}

async fn run(config: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tariscope-sync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_prints_the_version_and_the_mirror_keeps_it_in_every_variant() {
    for style in VARIANTS {
        let sim = start(config(style)).await;
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &sim);

        let (_, text) = run(&config, &["doctor"]).await;
        assert!(
            text.contains(&format!("Tariscope version {VERSION}, database {DATABASE}")),
            "{style:?}: doctor says\n{text}"
        );

        let (code, text) = run(&config, &["--run-once", "--jobs", "reference"]).await;
        assert_eq!(code, Some(0), "{style:?}: {text}");
        let db = rusqlite::Connection::open(dir.path().join("mirror.db")).unwrap();
        let row: [Option<String>; 5] = db
            .query_row(
                "SELECT version, database, build, serial, edition FROM system_info",
                [],
                |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]),
            )
            .unwrap();
        assert_eq!(
            row,
            [VERSION, DATABASE, BUILD, SERIAL, EDITION].map(|s| Some(s.to_owned())),
            "{style:?}"
        );
    }
}

//! The WAL while an integrator holds a read transaction through a backfill (issue 21): the
//! summaries job groups its items' writes, so the WAL grows with the data, not with the
//! number of items; the daemon warns that a reader holds an old snapshot; and once the reader
//! lets go the WAL is checkpointed and cut back without any further write.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use tariscope_sync::api::{ClientConfig, Secret, TariscopeClient};
use tariscope_sync::sim::{DatasetConfig, SimConfig, SimHandle};
use tariscope_sync::store::{Outcome, Store};
use tariscope_sync::sync::{Clock, JobKind, Progress, PullOptions, Scope, run_job};
use tracing_subscriber::fmt::MakeWriter;

const END: &str = "2026-03-01";
/// Subscribers x 2 days: 4,000 items, one commit each before grouping.
const SUBSCRIBERS: usize = 2_000;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The process-wide log (the checkpointer logs from its own thread, so a thread-local
/// subscriber would not see it).
fn logs() -> &'static Buffer {
    static LOGS: OnceLock<Buffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(buffer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buffer
    })
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Polls `cond` every 50 ms for up to a minute.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(60), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A reader on its own thread holding a snapshot until told to let go.
struct Reader {
    release: mpsc::Sender<()>,
    done: std::thread::JoinHandle<()>,
}

impl Reader {
    fn hold(db: &Path) -> Reader {
        let (release, rx) = mpsc::channel();
        let (held_tx, held) = mpsc::channel();
        let db = db.to_path_buf();
        let done = std::thread::spawn(move || {
            let c = rusqlite::Connection::open(db).unwrap();
            c.execute_batch("BEGIN").unwrap();
            let _: i64 = c
                .query_row("SELECT count(*) FROM subscribers", [], |r| r.get(0))
                .unwrap();
            held_tx.send(()).unwrap();
            let _ = rx.recv();
            c.execute_batch("COMMIT").unwrap();
        });
        held.recv().unwrap();
        Reader { release, done }
    }

    fn let_go(self) {
        self.release.send(()).unwrap();
        self.done.join().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_holding_a_snapshot_through_a_backfill_keeps_the_wal_bounded() {
    let logs = logs();
    let end: NaiveDate = END.parse().unwrap();
    let sim = SimHandle::start(SimConfig {
        dataset: DatasetConfig {
            subscribers: SUBSCRIBERS,
            nodes: 2,
            departments_per_node: 3,
            days: 30,
            end_date: Some(end),
            ..DatasetConfig::default()
        },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut cfg = ClientConfig::new(sim.base_url(), "demo", Secret::new("demo"));
    cfg.rate_per_sec = 0.0;
    cfg.concurrency = 16;
    let remote = TariscopeClient::new(cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mirror.db");
    let wal = dir.path().join("mirror.db-wal");
    let store = Store::open(&db).unwrap();
    store.warn_wal_above(256 << 10);
    let mut opts = PullOptions::new(end);
    opts.scope = Scope {
        nodes: vec![1, 2],
        departments: vec![],
    };
    opts.concurrency = 16;
    opts.clock = Clock::fixed(Utc.with_ymd_and_hms(2026, 3, 2, 6, 0, 0).unwrap());
    let r = run_job(
        JobKind::Subscribers,
        &remote,
        &store,
        &opts,
        &Progress::new(),
    )
    .await
    .unwrap();
    assert_eq!(r.counts.inserted as usize, SUBSCRIBERS);
    let side = rusqlite::Connection::open(&db).unwrap();
    side.busy_timeout(Duration::from_secs(30)).unwrap();
    let truncate = |c: &rusqlite::Connection| {
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
    };
    eventually("the WAL is truncated before the backfill", || {
        truncate(&side) == 0 && size(&wal) == 0
    });
    let db_before = size(&db);

    let reader = Reader::hold(&db);
    opts.from = Some(end.pred_opt().unwrap());
    opts.to = Some(end);
    let r = run_job(JobKind::Summaries, &remote, &store, &opts, &Progress::new())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.counts.inserted as usize, 2 * SUBSCRIBERS);
    let wal_held = size(&wal);
    eventually("the checkpointer sees frames it cannot copy", || {
        store.wal().unwrap().lag_frames > 0
    });
    eventually("the warning names the reader", || {
        let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
        text.contains("a reader holds an old snapshot")
    });

    reader.let_go();
    // No write after this point: the checkpointer alone must copy and cut back the WAL.
    eventually("the WAL is cut back after the reader let go", || {
        size(&wal) <= 4 << 20 && store.wal().unwrap().lag_frames == 0
    });
    assert_eq!(truncate(&side), 0);
    let added = size(&db) - db_before;
    assert!(
        wal_held <= 3 * added,
        "the WAL grew to {wal_held} bytes for {added} bytes of data (bound: 3x)"
    );
}

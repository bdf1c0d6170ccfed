//! Tests of `runs`: the selections of job runs the daemon makes on every run.

use super::*;
use crate::store::Store;

async fn run(store: &Store, job: &str, n: u32, outcome: Option<Outcome>) -> i64 {
    let id = store
        .start_run(RunStart {
            job: job.into(),
            mode: Mode::Incremental,
            window: None,
            started_at: format!("2026-01-01T00:00:{n:02}Z"),
        })
        .await
        .unwrap();
    if let Some(outcome) = outcome {
        let ended = format!("2026-01-01T00:01:{n:02}Z");
        store
            .finish_run(id, outcome, Counts::default(), None, ended, None)
            .await
            .unwrap();
    }
    id
}

/// The daemon's selections read what they say (and only that job's runs), whatever the
/// history holds around them.
#[tokio::test]
async fn the_daemons_run_selections_pick_the_right_rows() {
    for backend in crate::store::test_backends::backends().await {
        let store = crate::store::test_backends::on(&backend);
        assert_eq!(store.last_run("push").await.unwrap(), None);
        assert_eq!(store.last_ok_run("push").await.unwrap(), None);
        let ok = run(&store, "push", 1, Some(Outcome::Ok)).await;
        run(&store, "subscribers", 2, Some(Outcome::Ok)).await;
        run(&store, "push", 3, Some(Outcome::Failed)).await;
        // Left running by a crash (starting a run closes earlier ones, so it is the last).
        let crashed = run(&store, "push", 4, None).await;
        run(&store, "subscribers", 5, None).await;

        assert_eq!(store.last_run("push").await.unwrap().unwrap().id, crashed);
        let last_ok = store.last_ok_run("push").await.unwrap().unwrap();
        assert_eq!((last_ok.id, last_ok.outcome), (ok, Outcome::Ok));
        assert_eq!(last_ok.ended_at.as_deref(), Some("2026-01-01T00:01:01Z"));
        let running: Vec<i64> = store
            .runs_left_running("push")
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(running, [crashed]);
        assert_eq!(store.job_runs("push").await.unwrap().len(), 3);
    }
}

//! Scheduler tests with paused tokio time.

use std::sync::Mutex;

use super::*;
use crate::config::parse_schedule;

/// (job, start, end) of one run.
type Run = (String, DateTime<Utc>, DateTime<Utc>);

/// Records each run; each run takes `duration`.
struct Recorder {
    clock: Clock,
    duration: Duration,
    runs: Mutex<Vec<Run>>,
}

impl JobRunner for Recorder {
    async fn run(&self, job: &str, stop: CancellationToken) -> RunOutcome {
        let start = self.clock.now();
        tokio::select! {
            _ = tokio::time::sleep(self.duration) => {}
            _ = stop.cancelled() => {
                // Finish the "current batch" quickly.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.runs
            .lock()
            .unwrap()
            .push((job.to_string(), start, self.clock.now()));
        RunOutcome::Ok
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn job(name: &str, cron: &str, last: Option<&str>) -> ScheduledJob {
    ScheduledJob {
        name: name.into(),
        schedule: parse_schedule(cron).unwrap(),
        last_success: last.map(at),
        catch_up_first: false,
    }
}

async fn drive(jobs: Vec<ScheduledJob>, duration: Duration, run_for: Duration) -> Vec<Run> {
    let clock = Clock::starting_at(at("2025-05-20T10:00:30Z"));
    let recorder = Arc::new(Recorder {
        clock,
        duration,
        runs: Mutex::new(Vec::new()),
    });
    let options = SchedulerOptions {
        timezone: chrono_tz::UTC,
        grace: Duration::from_secs(5),
    };
    let done = run(
        jobs,
        recorder.clone(),
        clock,
        options,
        tokio::time::sleep(run_for),
    )
    .await;
    assert!(done, "jobs must finish within the grace period");
    let mut runs = recorder.runs.lock().unwrap().clone();
    runs.sort_by_key(|r| r.1);
    runs
}

#[tokio::test(start_paused = true)]
async fn jobs_fire_at_their_cron_times() {
    let runs = drive(
        vec![
            job("a", "*/1 * * * *", Some("2025-05-20T10:00:00Z")),
            job("b", "0 */2 * * * *", Some("2025-05-20T10:00:00Z")),
        ],
        Duration::from_secs(1),
        Duration::from_secs(5 * 60),
    )
    .await;
    let starts = |name: &str| -> Vec<String> {
        runs.iter()
            .filter(|r| r.0 == name)
            .map(|r| r.1.format("%H:%M:%S").to_string())
            .collect()
    };
    assert_eq!(
        starts("a"),
        ["10:01:00", "10:02:00", "10:03:00", "10:04:00", "10:05:00"]
    );
    assert_eq!(starts("b"), ["10:02:00", "10:04:00"]);
}

#[tokio::test(start_paused = true)]
async fn a_job_never_overlaps_itself() {
    // Runs take 150 s on a one-minute schedule: ticks inside a run are skipped.
    let runs = drive(
        vec![job("slow", "* * * * *", Some("2025-05-20T10:00:00Z"))],
        Duration::from_secs(150),
        Duration::from_secs(10 * 60),
    )
    .await;
    for pair in runs.windows(2) {
        assert!(pair[1].1 >= pair[0].2, "overlap: {pair:?}");
    }
    let starts: Vec<_> = runs
        .iter()
        .map(|r| r.1.format("%H:%M:%S").to_string())
        .collect();
    assert_eq!(starts[..3], ["10:01:00", "10:04:00", "10:07:00"]);
}

#[tokio::test(start_paused = true)]
async fn catches_up_once_after_downtime() {
    // Hourly job whose last success was three hours ago: one immediate run, not three.
    let runs = drive(
        vec![
            job("late", "0 0 * * * *", Some("2025-05-20T07:00:00Z")),
            job("fresh", "0 0 * * * *", Some("2025-05-20T10:00:00Z")),
            job("never", "0 0 * * * *", None),
        ],
        Duration::from_secs(1),
        Duration::from_secs(10 * 60),
    )
    .await;
    let names: Vec<_> = runs
        .iter()
        .map(|r| (r.0.as_str(), r.1.format("%H:%M:%S").to_string()))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&("late", "10:00:30".into())));
    assert!(names.contains(&("never", "10:00:30".into())));
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_running_jobs_within_grace() {
    // A long run is asked to stop at shutdown and ends within the grace period.
    let runs = drive(
        vec![job("long", "* * * * *", Some("2025-05-20T10:00:00Z"))],
        Duration::from_secs(3600),
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].2, at("2025-05-20T10:02:00.010Z"));
}

#[test]
fn schedules_follow_the_time_zone() {
    let s = parse_schedule("0 0 3 * * *").unwrap();
    let kyiv: Tz = "Europe/Kyiv".parse().unwrap();
    let next = next_fire(&s, kyiv, at("2025-05-20T10:00:00Z")).unwrap();
    assert_eq!(
        next,
        at("2025-05-21T00:00:00Z"),
        "03:00 in Kyiv (UTC+3 in May)"
    );
}

#[tokio::test(start_paused = true)]
async fn catch_up_first_jobs_run_before_the_others() {
    let mut first = job("subscribers", "0 0 * * * *", None);
    first.catch_up_first = true;
    let runs = drive(
        vec![
            job("payments", "0 0 * * * *", None),
            first,
            job("push", "0 0 * * * *", None),
        ],
        Duration::from_secs(5),
        Duration::from_secs(60),
    )
    .await;
    let starts: Vec<_> = runs
        .iter()
        .map(|r| (r.0.as_str(), r.1.format("%H:%M:%S").to_string()))
        .collect();
    assert_eq!(starts[0], ("subscribers", "10:00:30".to_string()));
    assert!(
        starts[1..].iter().all(|(_, t)| t == "10:00:35"),
        "{starts:?}"
    );
    assert_eq!(starts.len(), 3);
}

//! The leader election and its fencing (`store::pg::leader`) against a real PostgreSQL
//! server (a throwaway cluster from tests/pg_support): one leader per Tariscope server; a
//! standby names it; a killed leader's lock passes at once; a silent (paused) leader's
//! session is ended by the server within the takeover time, so a standby leads and the old
//! leader can neither confirm nor commit, even a transaction it had open. Must not: mock
//! the server.

mod api_support;
mod cli_support;
mod deploy_support;
mod pg_support;

use std::time::{Duration, Instant};

use tariscope_sync::store::pg::leader::{Election, Role};
use tariscope_sync::store::pg::{PgError, Target};

const SCOPE: &str = "http://127.0.0.1:8080/";

/// A prepared session of `holder` on the database at `url`.
fn session(url: &str, election: &Election, holder: &str) -> (postgres::Client, Target) {
    let target = Target::parse(url, None).unwrap();
    let mut client = target.connect().unwrap();
    election.prepare(&mut client, holder, &target).unwrap();
    (client, target)
}

/// A database on a throwaway cluster (kept running while the first element lives) and two
/// prepared sessions of one election: A (`host-a:101`) and B (`host-b:202`), with the
/// target they share. `None` where no cluster can be had (skipped).
fn pair(
    takeover: Duration,
) -> Option<(
    pg_support::PgCluster,
    Election,
    postgres::Client,
    postgres::Client,
    Target,
)> {
    let pg = pg_support::cluster()?;
    let url = pg.database();
    let election = Election::new(SCOPE, takeover);
    let (a, target) = session(&url, &election, "host-a:101");
    let (b, _) = session(&url, &election, "host-b:202");
    Some((pg, election, a, b, target))
}

/// Tries every `election.retry_every()` until `client` leads; how long that took.
fn lead_within(
    election: &Election,
    client: &mut postgres::Client,
    target: &Target,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        match election.try_lead(client, target).unwrap() {
            Role::Leader => return start.elapsed(),
            Role::Standby { .. } => {}
        }
        assert!(
            start.elapsed() < limit,
            "the standby did not lead within {limit:?}"
        );
        std::thread::sleep(election.retry_every());
    }
}

#[test]
fn one_leader_a_standby_that_names_it_and_a_killed_leader_replaced_at_once() {
    let Some((_pg, election, mut a, mut b, target)) = pair(Duration::from_secs(15)) else {
        return;
    };

    assert_eq!(election.try_lead(&mut a, &target).unwrap(), Role::Leader);
    assert_eq!(
        election.try_lead(&mut b, &target).unwrap(),
        Role::Standby {
            leader: Some("tariscope-sync host-a:101".into())
        }
    );
    election.confirm(&mut a, &target).unwrap();
    let not_held = election.confirm(&mut b, &target).unwrap_err();
    assert!(matches!(not_held, PgError::Deposed { .. }), "{not_held:?}");

    // Another Tariscope server is another election: B leads that one meanwhile.
    let other = Election::new("http://127.0.0.1:9090", Duration::from_secs(15));
    assert_eq!(other.try_lead(&mut b, &target).unwrap(), Role::Leader);

    // The leader's process dies: its connection closes and the lock goes with it.
    drop(a);
    let took = lead_within(&election, &mut b, &target, Duration::from_secs(5));
    election.confirm(&mut b, &target).unwrap();
    eprintln!("a killed leader was replaced after {took:?}");
}

#[test]
fn a_silent_leader_loses_its_session_and_cannot_commit() {
    let takeover = Duration::from_secs(3);
    let Some((_pg, election, mut a, mut b, target)) = pair(takeover) else {
        return;
    };
    b.batch_execute("CREATE TABLE outbox_probe (id int)")
        .unwrap();
    assert_eq!(election.try_lead(&mut a, &target).unwrap(), Role::Leader);

    // A is "paused" in the middle of a fenced transaction: it confirmed, wrote, then went
    // silent (what SIGSTOP looks like from the server: a connection that says nothing).
    let mut tx = a.transaction().unwrap();
    election.confirm(&mut tx, &target).unwrap();
    tx.execute("INSERT INTO outbox_probe VALUES (1)", &[])
        .unwrap();
    let silent = Instant::now();

    // The standby keeps trying, as the daemon does, and leads within the takeover time.
    let took = lead_within(&election, &mut b, &target, takeover * 2);
    assert!(
        silent.elapsed() <= takeover + election.retry_every(),
        "took over {:?} after the leader went silent (takeover {takeover:?})",
        silent.elapsed()
    );
    eprintln!("a silent leader was replaced after {took:?}");

    // A wakes up: its commit fails and nothing it wrote is there.
    let commit = tx.commit();
    assert!(commit.is_err(), "a deposed leader committed");
    let rows: i64 = b
        .query_one("SELECT count(*) FROM outbox_probe", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "the deposed leader's write is in the mirror");
    let deposed = election.confirm(&mut a, &target).unwrap_err();
    assert!(
        matches!(deposed, PgError::Deposed { .. })
            && deposed.to_string().contains("no longer the leader"),
        "{deposed}"
    );
    election.confirm(&mut b, &target).unwrap();
}

#[test]
fn a_leader_that_heartbeats_keeps_its_lock() {
    let Some((_pg, election, mut a, mut b, target)) = pair(Duration::from_secs(2)) else {
        return;
    };
    assert_eq!(election.try_lead(&mut a, &target).unwrap(), Role::Leader);
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        std::thread::sleep(election.heartbeat_every());
        election.confirm(&mut a, &target).unwrap();
        assert!(matches!(
            election.try_lead(&mut b, &target).unwrap(),
            Role::Standby { .. }
        ));
    }
}

#[test]
fn a_leader_paused_between_transactions_is_replaced_within_the_takeover_time() {
    let takeover = Duration::from_secs(3);
    let Some((_pg, election, mut a, mut b, target)) = pair(takeover) else {
        return;
    };
    assert_eq!(election.try_lead(&mut a, &target).unwrap(), Role::Leader);
    election.confirm(&mut a, &target).unwrap();
    let silent = Instant::now();
    lead_within(&election, &mut b, &target, takeover * 2);
    assert!(
        silent.elapsed() <= takeover + election.retry_every(),
        "took over {:?} after the leader went silent (takeover {takeover:?})",
        silent.elapsed()
    );
    assert!(matches!(
        election.confirm(&mut a, &target),
        Err(PgError::Deposed { .. })
    ));
}

/// The fence of Tariscope writes (`daemon::leader_fence`, installed on a leader's client):
/// a write goes out while the store's writer session holds the leader lock and is refused,
/// unsent, once that session is gone; reads are not held up by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaders_client_sends_no_write_once_its_session_is_gone() {
    use tariscope_sync::api::{ApiError, Format, TariscopeClient};
    use tariscope_sync::model::NewSubscriber;
    use tariscope_sync::store::{Leadership, Store};

    let Some(pg) = pg_support::cluster_from_async().await else {
        return;
    };
    let sim = api_support::start(api_support::sim_config(Default::default())).await;
    let election = Election::new(&sim.base_url(), Duration::from_secs(3));
    let (url, store) = std::thread::scope(|s| {
        s.spawn(|| {
            let url = pg.database();
            let target = Target::parse(&url, None).unwrap();
            match Store::lead_postgres(&target, &election, "host-a:101").unwrap() {
                Leadership::Leader(store) => (url, store),
                Leadership::Standby { .. } => panic!("the only daemon does not lead"),
            }
        })
        .join()
        .unwrap()
    });
    let client = TariscopeClient::new(api_support::client_config(&sim, Format::Json))
        .unwrap()
        .with_fence(tariscope_sync::daemon::leader_fence(&store));
    let snap = sim.state();
    let new = |name: &str| NewSubscriber {
        fullname: name.into(),
        department_id: Some(snap.departments[0].id),
        ..NewSubscriber::default()
    };
    client
        .subscriber_create(&new("While leading"))
        .await
        .unwrap();
    assert_eq!(sim.request_count("subscriber.create"), 1);

    // The server ends the leader's session (what it does to a paused leader's).
    let ended: bool = std::thread::scope(|s| {
        s.spawn(|| {
            let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            admin
                .query_one(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = 'tariscope-sync host-a:101'",
                    &[],
                )
                .unwrap()
                .get(0)
        })
        .join()
        .unwrap()
    });
    assert!(ended);
    let refused = client.subscriber_create(&new("After")).await.unwrap_err();
    assert!(
        matches!(refused, ApiError::Fenced { .. }) && refused.to_string().contains("not sent"),
        "{refused}"
    );
    assert_eq!(
        sim.request_count("subscriber.create"),
        1,
        "a write went out after the leader's session ended"
    );
    // Reads are not fenced, and the store knows it was deposed.
    client.subscriber_get(snap.subscribers[0].id).await.unwrap();
    let deposed = store.deposed().unwrap();
    tokio::time::timeout(Duration::from_secs(5), deposed.cancelled())
        .await
        .expect("the store was not told it no longer leads");
    drop(store);
    sim.shutdown().await;
}

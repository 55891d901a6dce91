//! Two `stockflight-batch --once` processes on the same keyspace never run at once: the second
//! finds the run lease (a Cassandra LWT row) taken, exits 75 naming the holder and writes
//! nothing; the lease is released at the end of a run, and expires (TTL) when its holder was
//! killed.

#[path = "support/batch.rs"]
mod support;

use std::time::Duration;

use stockflight_tests::signal;

/// Exit code of a run refused because another holds the lease (sysexits' EX_TEMPFAIL).
const LEASE_HELD: i32 = 75;

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_is_refused_while_a_run_holds_the_lease() {
    let data = support::generate(60, 12, 90, 41);
    let support::Loaded {
        session,
        keyspace,
        dir,
        store,
        url,
    } = support::Loaded::local("batch_lease", &data).await;
    let storage_args = ["--storage-url", url.as_str()];

    // A takes the lease; it is frozen (SIGSTOP) while it holds it, so B surely starts during
    // A's run, however fast the machine.
    let mut a = support::BatchProcess::spawn(&keyspace, &storage_args, &["--run-id", "a"]);
    a.wait_log("run lease taken", Duration::from_secs(60));
    signal(a.child.id(), "STOP");
    support::wait_lease(&session, &keyspace, "A holds the lease", |o| {
        o.is_some_and(|o| o.ends_with("/run a"))
    })
    .await;

    let b = support::run_batch(&keyspace, &storage_args, &["--run-id", "b"]);
    let stderr = String::from_utf8_lossy(&b.stderr);
    assert_eq!(
        b.status.code(),
        Some(LEASE_HELD),
        "B must be refused; stderr:\n{stderr}"
    );
    let expected = format!(
        "stockflight-batch: another run is in progress (run lease held by {}/pid {}/run a); nothing was done",
        hostname(),
        a.child.id()
    );
    assert!(stderr.contains(&expected), "expected {expected:?} in:\n{stderr}");
    assert!(!dir.join("snapshots/b").exists(), "B wrote nothing");

    // A goes on and publishes; it releases the lease at its end.
    signal(a.child.id(), "CONT");
    support::assert_success(&a.finish(Duration::from_secs(120)));
    assert_eq!(support::current(&store).await.run_id, "a");
    assert_eq!(
        support::lease_owner(&session, &keyspace).await,
        None,
        "A released the lease"
    );

    // Now B may run.
    support::assert_success(&support::run_batch(&keyspace, &storage_args, &["--run-id", "b"]));
    let b = support::current(&store).await;
    assert_eq!(b.run_id, "b");
    support::check_snapshot(&store, &b, &data, &[("a", &data), ("b", &data)]).await;

    // A holder killed outright (no release) blocks others only until its short TTL runs out.
    let mut c = support::BatchProcess::spawn(&keyspace, &storage_args, &["--run-id", "c", "--lease-ttl-secs", "3"]);
    c.wait_log("run lease taken", Duration::from_secs(60));
    signal(c.child.id(), "KILL");
    assert!(!c.finish(Duration::from_secs(30)).status.success());
    let owner = support::lease_owner(&session, &keyspace).await;
    assert!(
        owner.as_deref().is_some_and(|o| o.ends_with("/run c")),
        "the killed holder still holds the lease: {owner:?}"
    );
    support::wait_lease(&session, &keyspace, "the killed holder's lease expires", |o| {
        o.is_none()
    })
    .await;
    support::assert_success(&support::run_batch(&keyspace, &storage_args, &["--run-id", "d"]));
    assert_eq!(support::current(&store).await.run_id, "d");

    std::fs::remove_dir_all(&dir).ok();
    support::drop_keyspace(&session, &keyspace).await;
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

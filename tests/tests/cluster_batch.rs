//! The batch on the 3-node Cassandra ring of `dev/stack up --cluster`, keyspace replication
//! factor 3: the published aggregates equal the model this test computes from the rows it
//! wrote, with the whole ring up and with one node killed (SIGKILL), at the configured read
//! consistency: `one` and `local_quorum` still answer with a node down, `all` cannot and
//! the run fails without publishing.
//!
//! It kills a node of the stack it runs on: `dev/test-cluster` starts a cluster stack of its
//! own and runs it (`#[ignore]`d in the plain `cargo test`, whose stack is a single node).

#[path = "support/batch.rs"]
mod support;

use stockflight_tests::{cluster_node_pid, signal, stack};
use support::check_snapshot;

const RF3: &str = "{'class': 'SimpleStrategy', 'replication_factor': 3}";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a cluster stack of its own: dev/test-cluster"]
async fn published_aggregates_equal_the_model_on_the_ring_also_with_a_node_down() {
    stack(&["up", "--ephemeral-ports", "kafka", "cassandra"]);
    let data = support::generate(120, 15, 85, 51);
    let support::Loaded {
        session,
        keyspace,
        dir,
        store,
        url,
    } = support::Loaded::local_with("cluster_batch", &data, RF3).await;
    let storage_args = ["--storage-url", url.as_str()];
    let run = |run_id: &'static str, consistency: &'static str| {
        support::run_batch(
            &keyspace,
            &storage_args,
            &[
                "--run-id",
                run_id,
                "--cassandra-consistency",
                consistency,
                "--scan-parallelism",
                "4",
                "--scan-page-size",
                "100",
            ],
        )
    };

    // The whole ring, read at LOCAL_QUORUM.
    support::assert_success(&run("a", "local_quorum"));
    let a = support::current(&store).await;
    assert_eq!(a.run_id, "a");
    check_snapshot(&store, &a, &data, &[("a", &data)]).await;

    // One node killed outright: ONE and LOCAL_QUORUM (2 of 3 replicas) still read every row.
    signal(cluster_node_pid("cassandra", 3), "KILL");
    support::assert_success(&run("b", "one"));
    let b = support::current(&store).await;
    assert_eq!(b.run_id, "b");
    check_snapshot(&store, &b, &data, &[("a", &data), ("b", &data)]).await;
    support::assert_success(&run("c", "local_quorum"));
    let c = support::current(&store).await;
    assert_eq!(c.run_id, "c");
    check_snapshot(&store, &c, &data, &[("a", &data), ("b", &data), ("c", &data)]).await;

    // ALL needs the dead node: the scan fails, the run fails and publishes nothing.
    let d = run("d", "all");
    let stderr = String::from_utf8_lossy(&d.stderr);
    assert!(
        !d.status.success(),
        "a scan at ALL with a node down must fail:\n{stderr}"
    );
    assert!(
        stderr.contains("consistency: All"),
        "the error names the consistency it could not reach:\n{stderr}"
    );
    assert_eq!(support::current(&store).await.run_id, "c", "nothing published");

    // Leave the ring whole for the next test.
    stack(&["up", "--ephemeral-ports", "kafka", "cassandra"]);
    std::fs::remove_dir_all(&dir).ok();
    support::drop_keyspace(&session, &keyspace).await;
}

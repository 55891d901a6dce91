//! The rewritten aggregates over `availability_current` answer exactly what the same queries
//! answer over its rows (the rule off), on a snapshot with random changes applied: updates of
//! snapshot pairs, new pairs (in and outside the reference data), NULL quantities, a group
//! every row of which moves to another status.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::util::pretty::pretty_format_batches;
use datafusion::catalog::TableProvider;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use scylla::value::CqlTimestamp;
use stockflight_common::sections::Consistency;
use stockflight_proto::cassandra::State;

use super::CurrentAggregates;
use crate::live::changes::{ChangeTable, Side};
use crate::live::connection::Connection;
use crate::live::current::{CURRENT_TABLE, Current, CurrentTable};
use crate::live::follower::{CurrentState, FollowOptions, Follower};
use crate::live::merge::Change;
use crate::live::reference::Reference;
use crate::live::rows::{Joiner, Pairs};
use crate::live::snapshot_rows::{SNAPSHOT_TABLE, SnapshotRows};
use crate::live::{LiveOptions, reads_live};

const BASE_MS: i64 = 1_764_000_000_000;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn random_state(rng: &mut Rng, ms: i64) -> State {
    let status = [1, 2, 3, 4][rng.below(4) as usize];
    State {
        sequence: Some(rng.below(100) as i64),
        source: Some(["pos", "wms"][rng.below(2) as usize].to_string()),
        available_qty: (rng.below(8) != 0).then(|| rng.below(50) as i64),
        reserved_qty: Some(rng.below(5) as i64),
        status: Some(status),
        event_time: Some(CqlTimestamp(ms)),
    }
}

fn snapshot_schema() -> Arc<Schema> {
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        text("item_id"),
        text("node_id"),
        Field::new("available_qty", DataType::Int64, true),
        Field::new("reserved_qty", DataType::Int64, true),
        Field::new("status", DataType::Int8, true),
        text("status_name"),
        Field::new("event_time", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        text("source"),
        Field::new("sequence", DataType::Int64, true),
        text("department"),
        text("category"),
        text("region"),
        text("node_type"),
    ]))
}

/// Two contexts over one snapshot and one set of changes: the rule on, and off.
async fn contexts() -> (SessionContext, SessionContext, SessionContext) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let items: Vec<String> = (0..40).map(|i| format!("i{i}")).collect();
    let nodes: Vec<String> = (0..12).map(|n| format!("n{n}")).collect();
    let text = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
    let reference = SessionContext::new();
    // i35.. and n10.. are not in the reference data: their rows read `unknown`.
    reference
        .register_batch(
            "items",
            RecordBatch::try_from_iter([
                ("item_id", text(items[..35].to_vec())),
                ("department", text((0..35).map(|i| format!("d{}", i % 3)).collect())),
                ("category", text((0..35).map(|i| format!("c{}", i % 7)).collect())),
            ])
            .unwrap(),
        )
        .unwrap();
    reference
        .register_batch(
            "nodes",
            RecordBatch::try_from_iter([
                ("node_id", text(nodes[..10].to_vec())),
                ("region", text((0..10).map(|n| format!("r{}", n % 4)).collect())),
                (
                    "node_type",
                    text((0..10).map(|n| ["store", "dc"][n % 2].to_string()).collect()),
                ),
            ])
            .unwrap(),
        )
        .unwrap();
    let refs = Arc::new(Reference::load(&reference).await.unwrap());
    let joiner = Joiner::new(snapshot_schema(), refs.clone());

    // The snapshot: most pairs of the first 30 items.
    let mut pairs: Vec<(String, String, State)> = Vec::new();
    for i in &items[..30] {
        for n in &nodes {
            if rng.below(5) != 0 {
                let ms = BASE_MS + rng.below(1000) as i64;
                let s = random_state(&mut rng, ms);
                pairs.push((i.clone(), n.clone(), s));
            }
        }
    }
    let rows = Pairs::from_states(pairs.iter().map(|(i, n, s)| (i.as_str(), n.as_str(), s)));
    let snapshot_batch = joiner.join(&rows).unwrap();
    let ctx_of = |rule: bool| {
        let ctx = SessionContext::new();
        ctx.register_batch(SNAPSHOT_TABLE, snapshot_batch.clone()).unwrap();
        (ctx, rule)
    };
    let (loader, _) = ctx_of(false);
    let snapshot_rows = SnapshotRows::load(&loader).await.unwrap();

    let options = LiveOptions {
        nodes: vec!["127.0.0.1:1".into()],
        keyspace: "unused".into(),
        consistency: Consistency::One,
        max_scan_rows: 10,
        request_timeout: std::time::Duration::from_secs(1),
        follow: FollowOptions {
            poll: std::time::Duration::from_secs(1),
            overlap: std::time::Duration::from_secs(1),
            cutoff_margin: std::time::Duration::ZERO,
            max_staleness: std::time::Duration::from_secs(3600),
        },
    };
    let follower = Arc::new(Follower::new(
        Arc::new(Connection::new(options.clone())),
        options.follow,
    ));
    let state = Arc::new(CurrentState::new("t".into(), 0, snapshot_rows, refs));
    follower.ready_for_tests(&state);
    // Changes: newer and older than the snapshot's rows, new pairs (some outside the reference
    // data), and every row of item i0 moved to `discontinued`.
    for k in 0..400 {
        let item = &items[rng.below(40) as usize];
        let node = &nodes[rng.below(12) as usize];
        let ms = BASE_MS + 500 + rng.below(2000) as i64;
        let s = random_state(&mut rng, ms);
        state.merge_for_tests(
            item,
            node,
            Change {
                write_us: ms * 1000 + k % 1000,
                state: s,
            },
        );
    }
    for n in &nodes {
        let s = State {
            status: Some(4),
            ..random_state(&mut rng, BASE_MS + 9000)
        };
        state.merge_for_tests(
            &items[0],
            n,
            Change {
                write_us: (BASE_MS + 9000) * 1000,
                state: s,
            },
        );
    }
    assert!(state.merged().winners().len() > 150, "enough pairs changed");
    let current = Arc::new(Current::new(follower, state));

    // With the rule among DataFusion's own, with the rule as the only optimizer rule (as when
    // it fires in the last pass: nothing simplifies what it built), and without it.
    let mut out = Vec::new();
    for (rule, alone) in [(true, false), (true, true), (false, false)] {
        let (ctx, rule) = ctx_of(rule);
        let snapshot = ctx.table_provider(SNAPSHOT_TABLE).await.unwrap();
        let table: Arc<dyn TableProvider> =
            Arc::new(CurrentTable::new(current.clone(), snapshot.clone(), joiner.clone()));
        ctx.register_table(CURRENT_TABLE, table.clone()).unwrap();
        if !rule {
            out.push(ctx);
            continue;
        }
        let changes =
            |side| -> Arc<dyn TableProvider> { Arc::new(ChangeTable::new(current.clone(), joiner.clone(), side)) };
        let rule = Arc::new(CurrentAggregates::new(
            table,
            snapshot,
            changes(Side::Changed),
            changes(Side::Replaced),
            joiner.clone(),
        ));
        if alone {
            let state = SessionStateBuilder::new_from_existing(ctx.state())
                .with_optimizer_rules(vec![rule])
                .build();
            out.push(SessionContext::new_with_state(state));
        } else {
            ctx.add_optimizer_rule(rule);
            out.push(ctx);
        }
    }
    let plain = out.pop().unwrap();
    let alone = out.pop().unwrap();
    (out.pop().unwrap(), alone, plain)
}

async fn answer(ctx: &SessionContext, sql: &str) -> (String, String) {
    let df = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let plan = df.clone().into_optimized_plan().unwrap();
    assert!(
        reads_live(&plan),
        "{sql}: the plan reads live tables, so it is never cached"
    );
    let batches = df.collect().await.unwrap();
    let mut lines: Vec<String> = pretty_format_batches(&batches)
        .unwrap()
        .to_string()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    (lines.join("\n"), plan.display_indent().to_string())
}

#[tokio::test]
async fn rewritten_current_aggregates_equal_the_rows() {
    let (rewritten, alone, plain) = contexts().await;
    let rewritable = [
        "SELECT region, count(*) AS row_count, sum(available_qty) AS units FROM availability_current \
         WHERE available_qty >= 10 GROUP BY region",
        "SELECT region, department, count(*), count(available_qty), avg(available_qty), sum(reserved_qty) \
         FROM availability_current GROUP BY region, department",
        "SELECT item_id, count(*) FROM availability_current WHERE status_name <> 'in_stock' GROUP BY item_id",
        "SELECT status, count(*) FILTER (WHERE region = 'r1'), sum(available_qty) FILTER (WHERE node_type = 'dc') \
         FROM availability_current GROUP BY status",
        "SELECT count(*), sum(available_qty), avg(reserved_qty) FROM availability_current",
        "SELECT count(*), sum(available_qty) FROM availability_current WHERE region = 'nowhere'",
        "SELECT upper(region) AS r, count(*) AS n FROM availability_current WHERE item_id IN ('i0', 'i1', 'i37') \
         GROUP BY upper(region) HAVING count(*) > 1 ORDER BY n DESC, r",
        "SELECT c.region, sum(c.available_qty) AS units FROM availability_current AS c \
         WHERE c.event_time > TIMESTAMP '2025-11-24 16:00:00.700' GROUP BY c.region",
        // DataFusion turns a single DISTINCT into a GROUP BY below a plain aggregate: the inner
        // one is rewritten, and a group whose rows all left is gone from it.
        "SELECT region, count(DISTINCT item_id) FROM availability_current GROUP BY region",
        // What Tableau sends for a calculated "in stock" measure, below a sort and a limit.
        "SELECT department, sum(CASE WHEN status_name = 'in_stock' THEN 1 ELSE 0 END) AS in_stock, \
         sum(available_qty - reserved_qty) AS free FROM availability_current \
         GROUP BY department ORDER BY in_stock DESC, department LIMIT 2",
        // An aggregate in a subquery, aggregated again above it.
        "SELECT count(*), sum(n) FROM (SELECT node_id, count(*) AS n FROM availability_current \
         WHERE node_type = 'store' GROUP BY node_id) AS per_node WHERE n > 20",
    ];
    for sql in rewritable {
        let (want, _) = answer(&plain, sql).await;
        let (got, plan) = answer(&rewritten, sql).await;
        assert!(
            plan.contains("availability_current__changed"),
            "{sql}: rewritten\n{plan}"
        );
        assert_eq!(got, want, "{sql}\n{plan}");
        let (got, plan) = answer(&alone, sql).await;
        // (DISTINCT only becomes rewritable through DataFusion's own rules.)
        assert!(
            sql.contains("DISTINCT") || plan.contains("availability_current__changed"),
            "{sql}: rewritten\n{plan}"
        );
        assert_eq!(got, want, "{sql}: the rule's plan as it built it\n{plan}");
    }
    // i0's rows all moved to `discontinued`: its group is gone from those of other statuses.
    let (gone, _) = answer(
        &rewritten,
        "SELECT item_id, count(*) FROM availability_current WHERE status <> 4 AND item_id = 'i0' GROUP BY item_id",
    )
    .await;
    assert_eq!(gone.lines().filter(|l| l.contains("i0")).count(), 0, "{gone}");

    let kept = [
        "SELECT region, min(available_qty), max(available_qty) FROM availability_current GROUP BY region",
        "SELECT region, count(*) FROM availability_current GROUP BY ROLLUP (region)",
    ];
    for sql in kept {
        let (want, _) = answer(&plain, sql).await;
        let (got, plan) = answer(&rewritten, sql).await;
        assert!(
            !plan.contains("availability_current__changed"),
            "{sql}: not rewritten\n{plan}"
        );
        assert_eq!(got, want, "{sql}");
    }
}

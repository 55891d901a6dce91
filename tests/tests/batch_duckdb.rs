//! DuckDB reads a published snapshot as it lies in storage (plain Hive-style Parquet, no
//! manifest needed): `read_parquet('…/availability_snapshot/**/*.parquet',
//! hive_partitioning = true)` gives the region from the directory names, and every table's
//! counts and sums equal those this test computes from the rows it wrote to Cassandra.

#[path = "support/batch.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value, json};
use stockflight_tests::require;

/// Reads the snapshot directory given as argv[1] with DuckDB and prints what it saw as JSON.
const DUCKDB_SCRIPT: &str = r#"
import json, sys
import duckdb

root = sys.argv[1]
con = duckdb.connect()
def rows(sql):
    return [list(r) for r in con.execute(sql).fetchall()]
snapshot = f"read_parquet('{root}/availability_snapshot/**/*.parquet', hive_partitioning = true)"
table = lambda name: f"read_parquet('{root}/{name}/*.parquet')"
out = {
    "types": {r[0]: r[1] for r in rows(f"DESCRIBE SELECT * FROM {snapshot}")},
    "by_region": rows(
        f"SELECT region, count(*), sum(available_qty), sum(reserved_qty), "
        f"count(*) FILTER (WHERE status = 4), count(DISTINCT item_id) "
        f"FROM {snapshot} GROUP BY region ORDER BY region"
    ),
    "west_only": rows(f"SELECT count(*) FROM {snapshot} WHERE region = 'west'")[0][0],
    "by_node": rows(f"SELECT count(*), sum(items_tracked), sum(units_available) FROM {table('availability_by_node')}")[0],
    "by_item": rows(f"SELECT count(*), sum(items_tracked), sum(units_reserved) FROM {table('availability_by_item')}")[0],
    "total": rows(
        f"SELECT items_tracked, discontinued, units_available, units_reserved "
        f"FROM {table('availability_by_region_category')} WHERE level = 'total'"
    ),
    "trend": rows(f"SELECT run_id, count(*), sum(items_tracked), typeof(any_value(run_time)) FROM {table('availability_trend')} GROUP BY run_id"),
    "items": rows(f"SELECT count(*) FROM {table('items')}")[0][0],
    "nodes": rows(f"SELECT count(*) FROM {table('nodes')}")[0][0],
}
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn duckdb_reads_the_published_layout_as_is() {
    let data = support::generate(50, 10, 85, 57);
    let support::Loaded {
        session,
        keyspace,
        dir,
        store: _,
        url,
    } = support::Loaded::local("batch_duckdb", &data).await;
    support::assert_success(&support::run_batch(
        &keyspace,
        &["--storage-url", &url],
        &["--run-id", "r1"],
    ));

    let output = Command::new(require("STOCKFLIGHT_PYTHON"))
        .args(["-c", DUCKDB_SCRIPT])
        .arg(dir.join("snapshots/r1"))
        .output()
        .expect("run the DuckDB script");
    assert!(
        output.status.success(),
        "DuckDB failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).expect("JSON from the script");

    // Types as BI tools expect them: plain strings and timestamps without time zone; the
    // region comes from the `region=…` directories.
    let types = &seen["types"];
    for (column, ty) in [
        ("item_id", "VARCHAR"),
        ("node_id", "VARCHAR"),
        ("available_qty", "BIGINT"),
        ("status", "TINYINT"),
        ("event_time", "TIMESTAMP"),
        ("department", "VARCHAR"),
        ("region", "VARCHAR"),
    ] {
        assert_eq!(types[column], ty, "type of {column} in {types}");
    }

    // Per region, from the rows the test wrote (`unknown` for the orphan node).
    let attrs = support::Attributes::of(&data);
    let mut by_region: BTreeMap<String, (i64, i64, i64, i64, std::collections::BTreeSet<String>)> = BTreeMap::new();
    for row in &data.rows {
        let (region, _, _) = attrs.get(row);
        let e = by_region.entry(region).or_default();
        e.0 += 1;
        e.1 += row.available;
        e.2 += row.reserved.unwrap_or(0);
        e.3 += i64::from(row.status == 4);
        e.4.insert(row.item_id.clone());
    }
    let expected: Vec<Value> = by_region
        .iter()
        .map(|(region, (n, available, reserved, discontinued, items))| {
            json!([region, n, available, reserved, discontinued, items.len()])
        })
        .collect();
    assert_eq!(seen["by_region"], json!(expected));
    assert!(by_region.contains_key("unknown"), "the data set has an orphan node");
    assert_eq!(seen["west_only"], json!(by_region["west"].0));

    let n = data.rows.len() as i64;
    let available: i64 = data.rows.iter().map(|r| r.available).sum();
    let reserved: i64 = data.rows.iter().map(|r| r.reserved.unwrap_or(0)).sum();
    let discontinued = data.rows.iter().filter(|r| r.status == 4).count() as i64;
    let nodes_seen = data
        .rows
        .iter()
        .map(|r| &r.node_id)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let items_seen = data
        .rows
        .iter()
        .map(|r| &r.item_id)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert_eq!(seen["by_node"], json!([nodes_seen, n, available]));
    assert_eq!(seen["by_item"], json!([items_seen, n, reserved]));
    assert_eq!(seen["total"], json!([[n, discontinued, available, reserved]]));
    let groups = data
        .rows
        .iter()
        .map(|r| {
            let (region, department, _) = attrs.get(r);
            (region, department)
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert_eq!(seen["trend"], json!([["r1", groups, n, "TIMESTAMP"]]));
    assert_eq!(seen["items"], json!(data.items.len()));
    assert_eq!(seen["nodes"], json!(data.nodes.len()));

    std::fs::remove_dir_all(&dir).ok();
    support::drop_keyspace(&session, &keyspace).await;
}

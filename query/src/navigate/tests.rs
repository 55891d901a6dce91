//! Every rewritten query returns exactly what the unrewritten one returns: the same queries run
//! on a plain context (no rule, tables as they are) and on a navigated one (held tables, lookups,
//! cubes), before and after the cubes are built; answers compared row for row, with names and
//! types.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Float64Array, Int8Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::util::display::array_value_to_string;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use stockflight_proto::layout::DENORMALIZED;

use super::{MIN_FACT_ROWS, Navigation, Navigator, lookups};
use crate::catalog::memory::{self, Loaded};
use crate::catalog::session_config;

const ITEMS: usize = 240;
const NODES: usize = 120;

fn items() -> RecordBatch {
    let brand: Vec<Option<String>> = (0..ITEMS)
        .map(|i| (i % 17 != 0).then(|| format!("brand-{}", i % 30)))
        .collect();
    RecordBatch::try_from_iter([
        (
            "item_id",
            Arc::new(StringArray::from_iter_values((0..ITEMS).map(|i| format!("sku-{i:04}")))) as ArrayRef,
        ),
        (
            "name",
            Arc::new(StringArray::from_iter_values((0..ITEMS).map(|i| format!("Item {i}")))),
        ),
        (
            "department",
            Arc::new(StringArray::from_iter_values(
                (0..ITEMS).map(|i| format!("dept-{}", i % 5)),
            )),
        ),
        (
            "category",
            Arc::new(StringArray::from_iter_values(
                (0..ITEMS).map(|i| format!("cat-{}", i % 20)),
            )),
        ),
        ("brand", Arc::new(StringArray::from(brand))),
        (
            "price",
            Arc::new(Float64Array::from_iter_values(
                (0..ITEMS).map(|i| (i % 50) as f64 + 0.99),
            )),
        ),
    ])
    .unwrap()
}

fn nodes() -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "node_id",
            Arc::new(StringArray::from_iter_values(
                (0..NODES).map(|n| format!("node-{n:03}")),
            )) as ArrayRef,
        ),
        (
            "node_type",
            Arc::new(StringArray::from_iter_values(
                (0..NODES).map(|n| ["store", "warehouse", "dc"][n % 3]),
            )),
        ),
        (
            "region",
            Arc::new(StringArray::from_iter_values(
                (0..NODES).map(|n| format!("region-{}", n % 4)),
            )),
        ),
        (
            "state",
            Arc::new(StringArray::from_iter_values(
                (0..NODES).map(|n| format!("state-{}", n % 10)),
            )),
        ),
    ])
    .unwrap()
}

/// The drill-down table as the batch builds it: availability joined with both dimensions, the
/// brand copy coalesced to 'unknown' (so `brand` is not a verified copy).
fn snapshot() -> RecordBatch {
    let n = ITEMS * NODES;
    let h = |i: usize| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let item = |i: usize| i / NODES;
    let node = |i: usize| i % NODES;
    let status: Vec<i8> = (0..n).map(|i| (1 + (h(i) >> 20) % 4) as i8).collect();
    RecordBatch::try_from_iter([
        (
            "item_id",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("sku-{:04}", item(i))),
            )) as ArrayRef,
        ),
        (
            "node_id",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("node-{:03}", node(i))),
            )),
        ),
        (
            "available_qty",
            Arc::new(Int64Array::from_iter(
                (0..n).map(|i| (h(i) % 13 != 0).then_some((h(i) % 200) as i64)),
            )),
        ),
        (
            "reserved_qty",
            Arc::new(Int32Array::from_iter_values((0..n).map(|i| ((h(i) >> 8) % 6) as i32))),
        ),
        ("status", Arc::new(Int8Array::from(status.clone()))),
        (
            "status_name",
            Arc::new(StringArray::from_iter_values(status.iter().map(|s| {
                ["in_stock", "low_stock", "out_of_stock", "discontinued"][(*s - 1) as usize]
            }))),
        ),
        (
            "event_time",
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                (0..n).map(|i| 1_764_000_000_000_000 + (h(i) >> 30) as i64 % 86_400_000_000),
            )),
        ),
        (
            "item_name",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("Item {}", item(i))),
            )),
        ),
        (
            "department",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("dept-{}", item(i) % 5)),
            )),
        ),
        (
            "category",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("cat-{}", item(i) % 20)),
            )),
        ),
        (
            "brand",
            Arc::new(StringArray::from_iter_values((0..n).map(|i| {
                if item(i) % 17 == 0 {
                    "unknown".to_string()
                } else {
                    format!("brand-{}", item(i) % 30)
                }
            }))),
        ),
        (
            "price",
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| (item(i) % 50) as f64 + 0.99),
            )),
        ),
        (
            "node_type",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| ["store", "warehouse", "dc"][node(i) % 3]),
            )),
        ),
        (
            "state",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("state-{}", node(i) % 10)),
            )),
        ),
        (
            "region",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("region-{}", node(i) % 4)),
            )),
        ),
    ])
    .unwrap()
}

fn mem(batch: RecordBatch) -> Arc<dyn TableProvider> {
    Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap())
}

/// The plain context, and the navigated one with its navigator.
async fn contexts() -> (SessionContext, SessionContext, Arc<Navigator>) {
    let plain = SessionContext::new_with_config(session_config());
    let navigated = SessionContext::new_with_config(session_config());
    for (name, batch) in [
        ("availability_snapshot", snapshot()),
        ("items", items()),
        ("nodes", nodes()),
    ] {
        let sort = vec![batch.schema().field(0).name().clone()];
        let Loaded::Table(held, _) = memory::load(&navigated, mem(batch), &sort, usize::MAX).await.unwrap() else {
            panic!("fits")
        };
        // The same tables on both sides: only the rule differs.
        plain.register_table(name, held.clone()).unwrap();
        navigated.register_table(name, held).unwrap();
    }
    let fact = navigated.table_provider("availability_snapshot").await.unwrap();
    let items = navigated.table_provider("items").await.unwrap();
    let verified = lookups::verify(&navigated, DENORMALIZED).await;
    // `items` is large enough to be a fact too (as 10,000 items are with the default
    // MIN_FACT_ROWS): a join to it is still a lookup.
    const { assert!(ITEMS * NODES >= MIN_FACT_ROWS) };
    let navigator = Arc::new(
        Navigator::new(
            &navigated,
            vec![
                ("availability_snapshot".into(), fact, ITEMS * NODES),
                ("items".into(), items, ITEMS),
            ],
            verified,
            1 << 30,
            ITEMS,
        )
        .unwrap(),
    );
    navigated.add_optimizer_rule(Arc::new(Navigation::new(navigator.clone())));
    (plain, navigated, navigator)
}

/// Rows as sorted text, with the schema's names and types first. Floating-point values are
/// rounded to 12 significant digits: DataFusion adds the partial sums of its partitions in the
/// order they arrive, so a float sum may differ in its last bits from run to run, rewritten or
/// not (and sums of floats are never rewritten).
async fn answer(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let df = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batches = df.collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows = Vec::new();
    let mut schema = String::new();
    for b in &batches {
        schema = b
            .schema()
            .fields()
            .iter()
            .map(|f| format!("{}:{}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(",");
        for r in 0..b.num_rows() {
            rows.push(b.columns().iter().map(|c| cell(c, r)).collect::<Vec<_>>().join("|"));
        }
    }
    rows.sort();
    rows.insert(0, schema);
    rows
}

fn cell(c: &ArrayRef, row: usize) -> String {
    match c.as_any().downcast_ref::<Float64Array>() {
        Some(f) if f.is_valid(row) => format!("{:.12e}", f.value(row)),
        _ => array_value_to_string(c, row).unwrap(),
    }
}

async fn explained(ctx: &SessionContext, sql: &str) -> String {
    let batches = ctx
        .sql(&format!("EXPLAIN {sql}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}

/// (query, what the navigated plan must read: "cube", "table" (lookups removed) or "any").
const QUERIES: &[(&str, &str)] = &[
    (
        "SELECT region, count(*) AS n, sum(available_qty) AS qty, avg(available_qty) AS a, min(available_qty), max(reserved_qty), count(available_qty) FROM availability_snapshot WHERE department = 'dept-1' GROUP BY region",
        "cube",
    ),
    (
        "SELECT count(*), sum(available_qty), avg(available_qty), count(available_qty), min(event_time) FROM availability_snapshot WHERE region = 'nowhere'",
        "cube",
    ),
    ("SELECT count(*), sum(reserved_qty) FROM availability_snapshot", "cube"),
    (
        "SELECT category, count(*) FILTER (WHERE status_name = 'out_of_stock') AS oos, sum(available_qty) FILTER (WHERE status = 1) FROM availability_snapshot WHERE region = 'region-2' AND department = 'dept-3' GROUP BY category ORDER BY category",
        "cube",
    ),
    (
        "SELECT node_id, count(*) AS n, sum(available_qty) AS qty FROM availability_snapshot WHERE region = 'region-1' AND node_type = 'store' GROUP BY node_id ORDER BY qty DESC, node_id LIMIT 7",
        "cube",
    ),
    (
        "SELECT region, department, category, sum(available_qty), count(*) FROM availability_snapshot GROUP BY ROLLUP (region, department, category)",
        "cube",
    ),
    (
        "SELECT region, node_type, sum(available_qty) FROM availability_snapshot GROUP BY CUBE (region, node_type)",
        "cube",
    ),
    (
        "SELECT region, node_type, count(*) FROM availability_snapshot GROUP BY GROUPING SETS ((region), (node_type), ())",
        "cube",
    ),
    (
        "SELECT sum(CASE WHEN status = 1 THEN 1 ELSE 0 END) AS in_stock, sum(status) AS s, avg(reserved_qty) AS r, count(status_name) FROM availability_snapshot WHERE reserved_qty > 2",
        "cube",
    ),
    (
        "SELECT department, count(DISTINCT category) AS cats, min(status_name), max(status_name) FROM availability_snapshot GROUP BY department",
        "cube",
    ),
    (
        "SELECT upper(region) AS r, sum(available_qty) FROM availability_snapshot WHERE category IN ('cat-1', 'cat-2', 'cat-7') GROUP BY upper(region) HAVING sum(available_qty) > 0",
        "cube",
    ),
    (
        "SELECT i.department, n.node_type, sum(a.available_qty) AS qty, count(*) AS n FROM availability_snapshot a JOIN items i ON a.item_id = i.item_id JOIN nodes n ON a.node_id = n.node_id WHERE n.region = 'region-3' AND a.status_name <> 'discontinued' GROUP BY ROLLUP (i.department, n.node_type)",
        "cube",
    ),
    (
        "SELECT i.department, n.node_type, sum(a.available_qty) AS qty, count(*) AS n FROM availability_snapshot a JOIN items i ON a.item_id = i.item_id JOIN nodes n ON a.node_id = n.node_id WHERE n.region = 'region-1' AND a.status_name <> 'in_stock' GROUP BY ROLLUP (i.department, n.node_type) ORDER BY i.department NULLS LAST, n.node_type NULLS LAST",
        "cube",
    ),
    (
        "SELECT i.category, a.region, sum(a.available_qty) AS qty FROM availability_snapshot a JOIN items i ON a.item_id = i.item_id WHERE i.department = 'dept-2' AND a.reserved_qty < 4 GROUP BY i.category, a.region",
        "cube",
    ),
    (
        "SELECT n.state, sum(a.available_qty) FROM nodes n JOIN availability_snapshot a ON n.node_id = a.node_id GROUP BY n.state",
        "cube",
    ),
    (
        "SELECT n.state, count(*) FROM availability_snapshot a LEFT JOIN nodes n ON a.node_id = n.node_id GROUP BY n.state",
        "cube",
    ),
    // brand differs between the copy ('unknown') and items (NULL): the join must stay a join.
    (
        "SELECT i.brand, count(*) FROM availability_snapshot a JOIN items i ON a.item_id = i.item_id GROUP BY i.brand",
        "any",
    ),
    // Float sums are never taken from a cube; the lookup is still removed.
    (
        "SELECT i.department, sum(a.price), avg(a.price) FROM availability_snapshot a JOIN items i ON a.item_id = i.item_id GROUP BY i.department",
        "table",
    ),
    // High-cardinality groups: no cube worth keeping; answered from the rows.
    (
        "SELECT item_id, sum(available_qty) AS qty FROM availability_snapshot WHERE region = 'region-0' GROUP BY item_id ORDER BY qty DESC, item_id LIMIT 5",
        "any",
    ),
    (
        "SELECT date_trunc('hour', event_time) AS h, count(*) FROM availability_snapshot GROUP BY 1",
        "any",
    ),
    ("SELECT count(*) FROM availability_snapshot WHERE random() < 2", "any"),
];

#[tokio::test]
async fn rewritten_queries_answer_exactly_as_the_originals() {
    let (plain, navigated, navigator) = contexts().await;
    assert_eq!(
        navigator.lookups.len(),
        2,
        "both lookups verified: {:?}",
        navigator.lookups
    );
    assert!(
        !navigator.lookups[0].columns.contains_key("brand"),
        "a coalesced copy is not verified"
    );
    let mut expected = Vec::new();
    for (sql, _) in QUERIES {
        let want = answer(&plain, sql).await;
        // Before any cube exists (lookups only), and again once the cubes are built.
        assert_eq!(answer(&navigated, sql).await, want, "{sql}");
        expected.push(want);
    }
    navigator.settled().await;
    // The rule as the only optimizer rule, as when it fires in DataFusion's last pass: what it
    // builds must run without a later simplification.
    let alone = SessionContext::new_with_state(
        SessionStateBuilder::new_from_existing(navigated.state())
            .with_optimizer_rules(vec![Arc::new(Navigation::new(navigator.clone()))])
            .build(),
    );
    for ((sql, reads), want) in QUERIES.iter().zip(&expected) {
        assert_eq!(&answer(&alone, sql).await, want, "{sql}: the rule alone");
        assert_eq!(&answer(&navigated, sql).await, want, "{sql}");
        let plan = explained(&navigated, sql).await;
        match *reads {
            "cube" => assert!(
                plan.contains("availability_snapshot__cube"),
                "{sql} should read a cube:\n{plan}"
            ),
            "table" => assert!(
                !plan.contains("__cube") && !plan.contains("Join"),
                "{sql} should read the table alone:\n{plan}"
            ),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_prepared_snapshot_answers_its_first_queries_from_cubes() {
    let (plain, navigated, navigator) = contexts().await;
    // What a snapshot goes through before it is served: first the default cubes (over the
    // small dimensions, found by counting every column's values, floats included)...
    navigator.prepare(&[]).await;
    assert!(navigator.bytes() > 0, "default cubes built");
    let by_region =
        "SELECT region, count(*) AS n, sum(available_qty) AS qty FROM availability_snapshot GROUP BY region";
    // ... then a shape the previous snapshot was asked for.
    let asked = (
        "availability_snapshot".to_string(),
        ["region", "item_id"]
            .map(String::from)
            .into_iter()
            .collect::<BTreeSet<_>>(),
    );
    let by_item =
        "SELECT item_id, sum(available_qty) FROM availability_snapshot WHERE region = 'region-1' GROUP BY item_id";
    let plan = explained(&navigated, by_item).await;
    assert!(
        !plan.contains("availability_snapshot__cube"),
        "not a default shape\n{plan}"
    );
    navigator.prepare(&[asked]).await;
    for sql in [by_region, by_item] {
        let plan = explained(&navigated, sql).await;
        assert!(
            plan.contains("availability_snapshot__cube"),
            "{sql}: its first run reads a cube\n{plan}"
        );
        assert_eq!(answer(&navigated, sql).await, answer(&plain, sql).await, "{sql}");
    }
}

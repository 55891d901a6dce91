//! The output tables: what each one means, as SQL over the scanned and reference tables.
//!
//! Status codes follow `AvailabilityStatus` in `availability.proto`: 1 in stock, 2 low stock,
//! 3 out of stock, 4 discontinued. Measures shared by the aggregate tables:
//!
//! - `items_tracked`: (item, node) rows counted;
//! - `in_stock`, `low_stock`, `out_of_stock`, `discontinued`: rows per status;
//! - `in_stock_rate`: sellable rows (in stock or low) over rows that are not discontinued
//!   (NULL when every row is discontinued);
//! - `units_available`, `units_reserved`: sums of the quantities (NULL quantities count as 0).
//!
//! Reference attributes missing for an id (an item not in the catalog, a node not in the
//! dimension) read `unknown` in the grouping columns, so no row is dropped.

/// The per-(item, node) drill-down table, Hive-partitioned by region.
pub const SNAPSHOT: &str = "availability_snapshot";
/// Per-node aggregates.
pub const BY_NODE: &str = "availability_by_node";
/// Per-item aggregates over the whole network.
pub const BY_ITEM: &str = "availability_by_item";
/// Region x department x category with roll-ups down to the grand total.
pub const BY_REGION_CATEGORY: &str = "availability_by_region_category";
/// One row per run x region x department, carried forward from run to run.
pub const TREND: &str = "availability_trend";
/// Partition column of [`SNAPSHOT`].
pub const SNAPSHOT_PARTITION: &str = "region";

/// The measures every aggregate table carries, over a relation with `status`,
/// `available_qty` and `reserved_qty`.
const MEASURES: &str = "
    COUNT(*) AS items_tracked,
    SUM(CASE WHEN status = 1 THEN 1 ELSE 0 END) AS in_stock,
    SUM(CASE WHEN status = 2 THEN 1 ELSE 0 END) AS low_stock,
    SUM(CASE WHEN status = 3 THEN 1 ELSE 0 END) AS out_of_stock,
    SUM(CASE WHEN status = 4 THEN 1 ELSE 0 END) AS discontinued,
    CAST(SUM(CASE WHEN status IN (1, 2) THEN 1 ELSE 0 END) AS DOUBLE)
        / CAST(NULLIF(SUM(CASE WHEN status = 4 THEN 0 ELSE 1 END), 0) AS DOUBLE) AS in_stock_rate,
    SUM(COALESCE(available_qty, 0)) AS units_available,
    SUM(COALESCE(reserved_qty, 0)) AS units_reserved";

/// Availability joined with the item catalog and the node dimension. The reference tables are
/// the left (build) side of each join, so only they are held in memory while availability
/// streams through.
pub fn snapshot_sql() -> String {
    "SELECT ia.item_id, ia.node_id, ia.available_qty, ia.reserved_qty, ia.status,
        CASE ia.status WHEN 1 THEN 'in_stock' WHEN 2 THEN 'low_stock' WHEN 3 THEN 'out_of_stock'
            WHEN 4 THEN 'discontinued' ELSE 'unknown' END AS status_name,
        ia.event_time, ia.source, ia.sequence,
        ia.item_name, ia.department, ia.category, ia.brand, ia.price,
        COALESCE(n.node_type, 'unknown') AS node_type, n.state, n.city, n.latitude, n.longitude,
        COALESCE(n.region, 'unknown') AS region
    FROM nodes n RIGHT JOIN (
        SELECT a.*, i.name AS item_name, COALESCE(i.department, 'unknown') AS department,
            COALESCE(i.category, 'unknown') AS category, i.brand, i.price
        FROM items i RIGHT JOIN availability a ON i.item_id = a.item_id
    ) ia ON n.node_id = ia.node_id"
        .to_string()
}

/// Per node: counts by status, in-stock rate and units.
pub fn by_node_sql() -> String {
    format!(
        "SELECT node_id, node_type, region, state, city, {MEASURES}
         FROM {SNAPSHOT} GROUP BY node_id, node_type, region, state, city"
    )
}

/// Per item across all nodes: where it is carried and how available it is.
pub fn by_item_sql() -> String {
    format!(
        "SELECT item_id, item_name, department, category, brand, {MEASURES}
         FROM {SNAPSHOT} GROUP BY item_id, item_name, department, category, brand"
    )
}

/// Region x department x category, with roll-ups; `level` says which grouping a row is:
/// `category` (all three set), `department`, `region` or `total` (grand total, all NULL).
pub fn by_region_category_sql() -> String {
    format!(
        "SELECT region, department, category,
            CASE WHEN grouping(region) = 1 THEN 'total'
                 WHEN grouping(department) = 1 THEN 'region'
                 WHEN grouping(category) = 1 THEN 'department'
                 ELSE 'category' END AS level,
            {MEASURES}
         FROM {SNAPSHOT}
         GROUP BY GROUPING SETS ((region, department, category), (region, department), (region), ())"
    )
}

/// This run's trend rows: run time x region x department. `run_time` is UTC.
pub fn trend_rows_sql(run_id: &str, run_time_utc: &str) -> String {
    format!(
        "SELECT arrow_cast('{run_time_utc}', 'Timestamp(Microsecond, None)') AS run_time,
            '{run_id}' AS run_id, region, department, {MEASURES}
         FROM {SNAPSHOT} GROUP BY region, department"
    )
}

/// The trend carried forward: earlier runs' rows (from the current snapshot's trend table,
/// without this run id so a re-run does not double it) plus this run's.
pub fn trend_sql(run_id: &str, run_time_utc: &str, has_previous: bool) -> String {
    let own = trend_rows_sql(run_id, run_time_utc);
    if has_previous {
        format!("SELECT * FROM previous_trend WHERE run_id <> '{run_id}' UNION ALL {own}")
    } else {
        own
    }
}

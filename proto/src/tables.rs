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
//! The aggregates are computed in the same pass as the drill-down table (see `fanout`): per
//! node and per item directly from the joined rows, and the region x department x category
//! roll-ups and the trend from one small table of partial measures at the finest of their
//! levels. All measures but the rate are sums, so summing partials is exact.
//!
//! Reference attributes missing for an id (an item not in the catalog, a node not in the
//! dimension) read `unknown` in the grouping columns, so no row is dropped.
//!
//! The batch job publishes these tables; the server computes the same tables as of now
//! (`availability_current` and the aggregates over it) from the published ones and the changes
//! since, with the `*_of_partials` forms here, so both follow one definition.

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

/// The additive measures of a group of joined rows (a relation with `status`,
/// `available_qty` and `reserved_qty`); coarser levels sum them, and `in_stock_rate` is derived
/// from them last ([`measures_of_partials`]).
pub const PARTIAL_MEASURES: &str = "
    COUNT(*) AS items_tracked,
    SUM(CASE WHEN status = 1 THEN 1 ELSE 0 END) AS in_stock,
    SUM(CASE WHEN status = 2 THEN 1 ELSE 0 END) AS low_stock,
    SUM(CASE WHEN status = 3 THEN 1 ELSE 0 END) AS out_of_stock,
    SUM(CASE WHEN status = 4 THEN 1 ELSE 0 END) AS discontinued,
    SUM(COALESCE(available_qty, 0)) AS units_available,
    SUM(COALESCE(reserved_qty, 0)) AS units_reserved";

/// The published measures over partial measures: taken as they are (`sum = false`, one
/// partial row per output row) or summed over the output's group (`sum = true`).
pub fn measures_of_partials(sum: bool) -> String {
    let m = |column: &str| {
        if sum {
            format!("SUM({column})")
        } else {
            column.to_string()
        }
    };
    let (tracked, in_stock, low, out, discontinued) = (
        m("items_tracked"),
        m("in_stock"),
        m("low_stock"),
        m("out_of_stock"),
        m("discontinued"),
    );
    format!(
        "{tracked} AS items_tracked, {in_stock} AS in_stock, {low} AS low_stock, {out} AS out_of_stock,
        {discontinued} AS discontinued,
        CAST({in_stock} + {low} AS DOUBLE) / CAST(NULLIF({tracked} - {discontinued}, 0) AS DOUBLE) AS in_stock_rate,
        {} AS units_available, {} AS units_reserved",
        m("units_available"),
        m("units_reserved")
    )
}

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

/// The additive measures, in the order [`PARTIAL_MEASURES`] names them.
pub const PARTIAL_COLUMNS: [&str; 7] = [
    "items_tracked",
    "in_stock",
    "low_stock",
    "out_of_stock",
    "discontinued",
    "units_available",
    "units_reserved",
];

/// Partial measures of `relation` (which has `keys` and the [`PARTIAL_COLUMNS`]) summed per
/// `keys`: the partials of a coarser grouping, or of two relations stacked with `UNION ALL`.
pub fn summed_partials_sql(keys: &str, relation: &str) -> String {
    let sums: Vec<String> = PARTIAL_COLUMNS.iter().map(|c| format!("SUM({c}) AS {c}")).collect();
    format!("SELECT {keys}, {} FROM {relation} GROUP BY {keys}", sums.join(", "))
}

/// Per node: counts by status, in-stock rate and units. `joined` is a relation shaped like
/// [`snapshot_sql`]; the node's attributes come from the dimension after aggregating by id.
pub fn by_node_sql(joined: &str) -> String {
    by_node_of_partials_sql(&format!(
        "SELECT node_id, {PARTIAL_MEASURES} FROM {joined} GROUP BY node_id"
    ))
}

/// [`by_node_sql`] from partial measures per node (`partials`: a query with `node_id` and the
/// [`PARTIAL_COLUMNS`], one row per node).
pub fn by_node_of_partials_sql(partials: &str) -> String {
    format!(
        "SELECT m.node_id, COALESCE(n.node_type, 'unknown') AS node_type, COALESCE(n.region, 'unknown') AS region,
            n.state, n.city, {}
         FROM nodes n RIGHT JOIN ({partials}) m
            ON n.node_id = m.node_id",
        measures_of_partials(false)
    )
}

/// Per item across all nodes: where it is carried and how available it is.
pub fn by_item_sql(joined: &str) -> String {
    by_item_of_partials_sql(&format!(
        "SELECT item_id, {PARTIAL_MEASURES} FROM {joined} GROUP BY item_id"
    ))
}

/// [`by_item_sql`] from partial measures per item (`partials`: a query with `item_id` and the
/// [`PARTIAL_COLUMNS`], one row per item).
pub fn by_item_of_partials_sql(partials: &str) -> String {
    format!(
        "SELECT m.item_id, i.name AS item_name, COALESCE(i.department, 'unknown') AS department,
            COALESCE(i.category, 'unknown') AS category, i.brand, {}
         FROM items i RIGHT JOIN ({partials}) m
            ON i.item_id = m.item_id",
        measures_of_partials(false)
    )
}

/// Name of the partial measures per region x department x category, which the roll-ups and
/// the trend sum up (a few thousand rows at most).
pub const REGION_CATEGORY_MEASURES: &str = "region_category_measures";

/// Partial measures per region x department x category of `joined`.
pub fn region_category_measures_sql(joined: &str) -> String {
    format!(
        "SELECT region, department, category, {PARTIAL_MEASURES} FROM {joined} GROUP BY region, department, category"
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
            {}
         FROM {REGION_CATEGORY_MEASURES}
         GROUP BY GROUPING SETS ((region, department, category), (region, department), (region), ())",
        measures_of_partials(true)
    )
}

/// This run's trend rows: run time x region x department. `run_time` is UTC.
pub fn trend_rows_sql(run_id: &str, run_time_utc: &str) -> String {
    format!(
        "SELECT arrow_cast('{run_time_utc}', 'Timestamp(Microsecond, None)') AS run_time,
            '{run_id}' AS run_id, region, department, {}
         FROM {REGION_CATEGORY_MEASURES} GROUP BY region, department",
        measures_of_partials(true)
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

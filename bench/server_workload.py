"""The dashboard workload of bench/server_bench.py: query shapes whose literals are drawn from the
snapshot's real values, so no two runs of a shape send the same statement (the server's result
cache cannot answer them) and every run asks about data that exists.

The shapes are the ones a dashboard sends: the blocks of clients/tableau/dashboard.sql with their
parameters, the ad-hoc SQL Tableau generates when a user drags fields (quoted, catalog-qualified,
`GROUP BY 1`), filters on any dimension, group-bys at region, department, category and node level,
top-N, point lookups by item, roll-ups and joins to `items` and `nodes`. DuckDB runs the very same
text (its catalog is named `stockflight`, schema `public`, like the server's).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Shape:
    """A query shape: a name and a function from drawn values to one statement."""

    name: str
    render: Callable[["Values", random.Random], str]


class Values:
    """Real values of the snapshot, read once through DuckDB."""

    def __init__(self, duck) -> None:
        def column(sql: str) -> list:
            return [row[0] for row in duck.sql(sql).fetchall()]

        self.regions = column("SELECT DISTINCT region FROM availability_snapshot ORDER BY 1")
        self.departments = column("SELECT DISTINCT department FROM availability_snapshot ORDER BY 1")
        self.categories = column("SELECT DISTINCT category FROM availability_snapshot ORDER BY 1")
        self.brands = column("SELECT DISTINCT brand FROM items WHERE brand IS NOT NULL ORDER BY 1")
        self.states = column("SELECT DISTINCT state FROM nodes WHERE state IS NOT NULL ORDER BY 1")
        self.node_types = column("SELECT DISTINCT node_type FROM availability_snapshot ORDER BY 1")
        self.statuses = column("SELECT DISTINCT status_name FROM availability_snapshot ORDER BY 1")
        self.items = column("SELECT item_id FROM items ORDER BY 1")
        self.nodes_by_region: dict[str, list[str]] = {}
        for node, region in duck.sql("SELECT node_id, region FROM nodes ORDER BY 1").fetchall():
            self.nodes_by_region.setdefault(region, []).append(node)
        self.dept_categories: dict[str, list[str]] = {}
        for dept, cat in duck.sql(
            "SELECT DISTINCT department, category FROM availability_snapshot ORDER BY 1, 2"
        ).fetchall():
            self.dept_categories.setdefault(dept, []).append(cat)
        low, high = duck.sql("SELECT min(event_time), max(event_time) FROM availability_snapshot").fetchall()[0]
        self.event_low, self.event_high = low, high
        self.max_reserved = duck.sql("SELECT max(reserved_qty) FROM availability_snapshot").fetchall()[0][0] or 1

    def region(self, rng: random.Random) -> str:
        return rng.choice([r for r in self.regions if r in self.nodes_by_region] or self.regions)

    def time_window(self, rng: random.Random) -> tuple[str, str]:
        """A window of 5-50% of the event-time range, as TIMESTAMP literals."""
        span = self.event_high - self.event_low
        width = span * rng.uniform(0.05, 0.5)
        start = self.event_low + (span - width) * rng.random()
        return ts(start), ts(start + width)


def q(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def ts(value) -> str:
    return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S')}'"


def _node_drill_down(v: Values, rng: random.Random) -> str:
    region = v.region(rng)
    node = rng.choice(v.nodes_by_region[region])
    statuses = rng.sample(v.statuses, k=min(2, len(v.statuses)))
    return (
        "SELECT item_id, item_name, department, category, status_name, available_qty, reserved_qty, "
        "event_time, source FROM availability_snapshot "
        f"WHERE region = {q(region)} AND node_id = {q(node)} "
        f"AND status_name IN ({', '.join(q(s) for s in statuses)}) "
        "ORDER BY status_name DESC, item_id"
    )


def _categories_of_region_department(v: Values, rng: random.Random) -> str:
    return (
        "SELECT category, items_tracked, in_stock, low_stock, out_of_stock, discontinued, in_stock_rate, "
        "units_available, units_reserved FROM availability_by_region_category "
        f"WHERE level = 'category' AND region = {q(v.region(rng))} AND department = {q(rng.choice(v.departments))} "
        "ORDER BY in_stock_rate ASC NULLS LAST, category"
    )


def _worst_nodes(v: Values, rng: random.Random) -> str:
    return (
        "SELECT node_id, node_type, city, state, items_tracked, out_of_stock, in_stock_rate, units_available "
        f"FROM availability_by_node WHERE region = {q(v.region(rng))} "
        f"ORDER BY in_stock_rate ASC NULLS LAST, node_id LIMIT {rng.randint(5, 50)}"
    )


def _most_unavailable_items(v: Values, rng: random.Random) -> str:
    return (
        "SELECT item_id, item_name, department, category, brand, items_tracked AS nodes_carrying, "
        "out_of_stock AS nodes_out_of_stock, in_stock_rate, units_available FROM availability_by_item "
        f"WHERE out_of_stock > {rng.randint(0, 3)} AND department = {q(rng.choice(v.departments))} "
        f"ORDER BY out_of_stock DESC, item_id LIMIT {rng.randint(10, 50)}"
    )


def _trend_by_region(v: Values, rng: random.Random) -> str:
    return (
        "SELECT run_time, region, SUM(items_tracked) AS items_tracked, "
        "CAST(SUM(in_stock + low_stock) AS DOUBLE) / CAST(NULLIF(SUM(items_tracked - discontinued), 0) AS DOUBLE) "
        f"AS in_stock_rate, SUM(units_available) AS units_available FROM availability_trend "
        f"WHERE department = {q(rng.choice(v.departments))} AND region <> {q(v.region(rng))} "
        "GROUP BY run_time, region ORDER BY run_time, region"
    )


def _filter_count(v: Values, rng: random.Random) -> str:
    return (
        "SELECT count(*) AS n, sum(available_qty) AS qty FROM availability_snapshot "
        f"WHERE region = {q(v.region(rng))} AND status_name = {q(rng.choice(v.statuses))} "
        f"AND reserved_qty > {rng.randint(0, max(1, v.max_reserved - 1))}"
    )


def _group_by_region(v: Values, rng: random.Random) -> str:
    return (
        "SELECT region, count(*) AS n, sum(available_qty) AS qty, avg(available_qty) AS avg_qty "
        f"FROM availability_snapshot WHERE department = {q(rng.choice(v.departments))} "
        f"AND reserved_qty <= {rng.randint(0, v.max_reserved)} GROUP BY region ORDER BY region"
    )


def _group_by_category(v: Values, rng: random.Random) -> str:
    dept = rng.choice(list(v.dept_categories))
    return (
        "SELECT category, count(*) AS rows_tracked, sum(available_qty) AS qty, "
        "count(*) FILTER (WHERE status_name = 'out_of_stock') AS out_of_stock "
        f"FROM availability_snapshot WHERE region = {q(v.region(rng))} AND department = {q(dept)} "
        "GROUP BY category ORDER BY category"
    )


def _group_by_node(v: Values, rng: random.Random) -> str:
    return (
        "SELECT node_id, count(*) AS n, sum(available_qty) AS qty, sum(reserved_qty) AS reserved "
        f"FROM availability_snapshot WHERE region = {q(v.region(rng))} AND node_type = {q(rng.choice(v.node_types))} "
        f"GROUP BY node_id ORDER BY qty DESC, node_id LIMIT {rng.randint(5, 20)}"
    )


def _top_items(v: Values, rng: random.Random) -> str:
    return (
        "SELECT item_id, sum(available_qty) AS qty FROM availability_snapshot "
        f"WHERE region = {q(v.region(rng))} GROUP BY item_id ORDER BY qty DESC, item_id LIMIT {rng.randint(10, 30)}"
    )


def _rollup_dept_nodetype(v: Values, rng: random.Random) -> str:
    return (
        "SELECT i.department, n.node_type, sum(a.available_qty) AS qty, count(*) AS n "
        "FROM availability_snapshot a JOIN items i ON a.item_id = i.item_id "
        "JOIN nodes n ON a.node_id = n.node_id "
        f"WHERE n.region = {q(v.region(rng))} AND a.status_name <> {q(rng.choice(v.statuses))} "
        "GROUP BY ROLLUP (i.department, n.node_type) ORDER BY i.department NULLS LAST, n.node_type NULLS LAST"
    )


def _drill_category_region(v: Values, rng: random.Random) -> str:
    return (
        "SELECT i.category, a.region, sum(a.available_qty) AS qty, "
        "count(*) FILTER (WHERE a.status_name = 'out_of_stock') AS out_of_stock "
        "FROM availability_snapshot a JOIN items i ON a.item_id = i.item_id "
        f"WHERE i.department = {q(rng.choice(v.departments))} AND a.reserved_qty < {rng.randint(1, v.max_reserved)} "
        "GROUP BY i.category, a.region "
        "ORDER BY i.category, a.region"
    )


def _brand_by_state(v: Values, rng: random.Random) -> str:
    return (
        "SELECT n.state, sum(a.available_qty) AS qty, count(*) AS n "
        "FROM availability_snapshot a JOIN items i ON a.item_id = i.item_id "
        "JOIN nodes n ON a.node_id = n.node_id "
        f"WHERE i.brand = {q(rng.choice(v.brands))} GROUP BY n.state ORDER BY n.state"
    )


def _point_lookup(v: Values, rng: random.Random) -> str:
    return f"SELECT * FROM availability_snapshot WHERE item_id = {q(rng.choice(v.items))} ORDER BY node_id"


def _items_in_list(v: Values, rng: random.Random) -> str:
    items = rng.sample(v.items, k=min(5, len(v.items)))
    return (
        "SELECT item_id, count(*) AS nodes, sum(available_qty) AS qty FROM availability_snapshot "
        f"WHERE item_id IN ({', '.join(q(i) for i in items)}) GROUP BY item_id ORDER BY item_id"
    )


def _time_window(v: Values, rng: random.Random) -> str:
    start, end = v.time_window(rng)
    return (
        "SELECT department, count(*) AS updates, sum(available_qty) AS qty FROM availability_snapshot "
        f"WHERE event_time >= {start} AND event_time < {end} GROUP BY department ORDER BY department"
    )


def _tableau_bars(v: Values, rng: random.Random) -> str:
    return (
        'SELECT "availability_snapshot"."category" AS "category", '
        'SUM("availability_snapshot"."available_qty") AS "sum:available_qty:ok", '
        'COUNT(1) AS "cnt:availability_snapshot:ok" '
        'FROM "stockflight"."public"."availability_snapshot" "availability_snapshot" '
        f'WHERE ("availability_snapshot"."region" = {q(v.region(rng))} '
        f'AND "availability_snapshot"."reserved_qty" < {rng.randint(1, v.max_reserved)}) GROUP BY 1'
    )


def _tableau_region_table(v: Values, rng: random.Random) -> str:
    return (
        'SELECT "availability_by_region_category"."region" AS "region", '
        'SUM("availability_by_region_category"."in_stock") AS "sum:in_stock:ok", '
        'SUM("availability_by_region_category"."items_tracked") AS "sum:items_tracked:ok" '
        'FROM "stockflight"."public"."availability_by_region_category" "availability_by_region_category" '
        f"WHERE (\"availability_by_region_category\".\"level\" = 'department' "
        f'AND "availability_by_region_category"."department" = {q(rng.choice(v.departments))} '
        f'AND "availability_by_region_category"."region" <> {q(v.region(rng))}) GROUP BY 1'
    )


def _small_table(v: Values, rng: random.Random) -> str:
    return (
        "SELECT node_type, count(*) AS nodes FROM nodes "
        f"WHERE region = {q(v.region(rng))} AND state <> {q(rng.choice(v.states))} "
        "GROUP BY node_type ORDER BY node_type"
    )


SHAPES = [
    Shape("node_drill_down", _node_drill_down),
    Shape("categories_of_region_dept", _categories_of_region_department),
    Shape("worst_nodes", _worst_nodes),
    Shape("most_unavailable_items", _most_unavailable_items),
    Shape("trend_by_region", _trend_by_region),
    Shape("filter_count", _filter_count),
    Shape("group_by_region", _group_by_region),
    Shape("group_by_category", _group_by_category),
    Shape("group_by_node", _group_by_node),
    Shape("top_items", _top_items),
    Shape("rollup_dept_nodetype", _rollup_dept_nodetype),
    Shape("drill_category_region", _drill_category_region),
    Shape("brand_by_state", _brand_by_state),
    Shape("point_lookup", _point_lookup),
    Shape("items_in_list", _items_in_list),
    Shape("time_window", _time_window),
    Shape("tableau_bars", _tableau_bars),
    Shape("tableau_region_table", _tableau_region_table),
    Shape("small_table", _small_table),
]


def statements(shape: Shape, values: Values, rng: random.Random, count: int) -> list[str]:
    """`count` different statements of `shape` (a shape with few possible literals may repeat)."""
    seen: list[str] = []
    for _ in range(count * 20):
        sql = shape.render(values, rng)
        if sql not in seen:
            seen.append(sql)
        if len(seen) == count:
            break
    return seen

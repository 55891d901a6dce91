-- Sample Tableau dashboard "Availability overview": one Custom SQL data source per block.
--
-- Paste one block (without its comment lines) into Data Source > New Custom SQL. Tableau wraps
-- it as SELECT ... FROM ( <block> ) "Custom SQL Query", so a block is one SELECT with no
-- trailing semicolon. <Parameters.Name> is a Tableau parameter (Insert Parameter in the Custom
-- SQL dialog); Tableau pastes string parameters as quoted literals.
--
-- Every block is run by tests/python/test_clients_tableau.py against the real pipeline, plain and
-- wrapped the way Tableau wraps it, and its result compared with DuckDB over the same Parquet.
-- Keep the format: a "-- name:" line starts a block, "-- sheet:" says where it is used.

-- name: kpi_network
-- sheet: KPI tiles (network in-stock rate, rows tracked, units available / reserved)
SELECT items_tracked, in_stock, low_stock, out_of_stock, discontinued, in_stock_rate,
       units_available, units_reserved
FROM availability_by_region_category
WHERE level = 'total'

-- name: in_stock_by_region
-- sheet: Bar chart "In-stock rate by region" (click a bar: sets the Region parameter)
SELECT region, items_tracked, in_stock, low_stock, out_of_stock, discontinued, in_stock_rate,
       units_available
FROM availability_by_region_category
WHERE level = 'region'
ORDER BY region

-- name: region_department_heatmap
-- sheet: Heat map region x department (colour: in_stock_rate, size: items_tracked)
SELECT region, department, items_tracked, in_stock_rate, out_of_stock, units_available
FROM availability_by_region_category
WHERE level = 'department'
ORDER BY region, department

-- name: categories_of_region_department
-- sheet: Table "Categories" for the selected Region and Department parameters
SELECT category, items_tracked, in_stock, low_stock, out_of_stock, discontinued, in_stock_rate,
       units_available, units_reserved
FROM availability_by_region_category
WHERE level = 'category' AND region = <Parameters.Region> AND department = <Parameters.Department>
ORDER BY in_stock_rate ASC NULLS LAST, category

-- name: worst_nodes
-- sheet: Table "Nodes with the lowest in-stock rate" (filtered to the Region parameter)
SELECT node_id, node_type, city, state, items_tracked, out_of_stock, in_stock_rate, units_available
FROM availability_by_node
WHERE region = <Parameters.Region>
ORDER BY in_stock_rate ASC NULLS LAST, node_id
LIMIT 20

-- name: trend_by_region
-- sheet: Line chart "In-stock rate over time" (one line per region; x: run_time, UTC)
-- The trend table is per region x department: re-aggregate the counts, never average rates.
SELECT run_time, region,
       SUM(items_tracked) AS items_tracked,
       CAST(SUM(in_stock + low_stock) AS DOUBLE)
           / CAST(NULLIF(SUM(items_tracked - discontinued), 0) AS DOUBLE) AS in_stock_rate,
       SUM(units_available) AS units_available
FROM availability_trend
GROUP BY run_time, region
ORDER BY run_time, region

-- name: most_unavailable_items
-- sheet: Table "Items out of stock at the most nodes" (network-wide)
SELECT item_id, item_name, department, category, brand, items_tracked AS nodes_carrying,
       out_of_stock AS nodes_out_of_stock, in_stock_rate, units_available
FROM availability_by_item
WHERE out_of_stock > 0
ORDER BY out_of_stock DESC, item_id
LIMIT 25

-- name: node_drill_down
-- sheet: Drill-down "What is missing at this node" (Region and Node parameters; the region
-- filter prunes the snapshot's region=... partitions, so only one region's files are read)
SELECT item_id, item_name, department, category, status_name, available_qty, reserved_qty,
       event_time, source
FROM availability_snapshot
WHERE region = <Parameters.Region> AND node_id = <Parameters.Node>
  AND status_name IN ('out_of_stock', 'low_stock')
ORDER BY status_name DESC, item_id

-- name: tableau_generated_region_bars
-- sheet: What Tableau itself sends for the bar chart when you drag the table instead of using
-- Custom SQL: catalog-qualified, quoted identifiers, SUM over measures. Re-aggregating
-- in_stock_rate itself would be wrong: build it as a calculated field from the counts.
SELECT "availability_by_region_category"."region" AS "region",
       SUM("availability_by_region_category"."in_stock") AS "sum:in_stock:ok",
       SUM("availability_by_region_category"."items_tracked") AS "sum:items_tracked:ok"
FROM "stockflight"."public"."availability_by_region_category" "availability_by_region_category"
WHERE ("availability_by_region_category"."level" = 'region')
GROUP BY 1

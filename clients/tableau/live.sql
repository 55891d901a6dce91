-- The Tableau guide's live sheet (section 4, "A live sheet"): one Custom SQL data source per
-- block, pasted the same way as dashboard.sql's. <Parameters.Item> is a string parameter whose
-- list comes from items.item_id.
--
-- Every block is run by tests/python/test_clients_tableau.py against the real pipeline's server
-- (its live tables read the pipeline's Cassandra keyspace), plain and wrapped the way Tableau
-- wraps Custom SQL. Keep the format: a "-- name:" line starts a block.

-- name: live_item_by_node
-- sheet: one item at every node, now
SELECT node_id, node_type, region, status_name, available_qty, reserved_qty, event_time
FROM availability_live
WHERE item_id = <Parameters.Item>

-- name: snapshot_item_by_node
-- sheet: the same item at the last batch
SELECT node_id, status_name, available_qty, reserved_qty, event_time
FROM availability_snapshot
WHERE item_id = <Parameters.Item>

-- name: in_stock_by_region_now_and_then
-- sheet: both answers in one data source
SELECT 'now' AS as_of, region, items_tracked, in_stock_rate, units_available
FROM availability_by_region_category_current
WHERE level = 'region'
UNION ALL
SELECT 'last batch' AS as_of, region, items_tracked, in_stock_rate, units_available
FROM availability_by_region_category
WHERE level = 'region'

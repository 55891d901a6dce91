//! `stockflight-server` over Flight SQL from Rust: data, refresh, error codes, prepared
//! statements, metadata, limits, cancellation. The real binary, on snapshots written here.

#[path = "support/server.rs"]
mod support;

use std::time::Duration;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, TimeUnit};
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo,
    CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo, ProstMessageExt,
};
use arrow_flight::{Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus};
use futures::StreamExt;
use prost::Message;
use support::*;
use tonic::Code;

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name(column)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone();
            (0..a.len()).map(move |i| a.value(i).to_string())
        })
        .collect()
}

#[tokio::test]
async fn serves_the_published_snapshot_and_picks_up_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut client = server.client().await;

    // Nothing published: a clear NOT_FOUND, not an empty table.
    let err = client.query("SELECT count(*) FROM items").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    assert!(err.message().contains("no snapshot"), "{err}");

    publish(dir.path(), "r1", 0);
    let sql = "SELECT sum(available_qty) FROM availability_snapshot WHERE region = 'east'";
    let expected = region_total(0, "east");
    assert!(
        eventually(Duration::from_secs(30), || {
            let inner = client.inner.clone();
            async move { Client { inner, token: None }.query(sql).await.is_ok() }
        })
        .await,
        "the snapshot was not picked up: {}",
        server.log_text()
    );
    assert_eq!(scalar_i64(&client.query(sql).await.unwrap()), expected);
    // Qualified names reach the same table.
    let qualified = "SELECT sum(available_qty) FROM stockflight.public.availability_snapshot WHERE region = 'east'";
    assert_eq!(scalar_i64(&client.query(qualified).await.unwrap()), expected);
    assert_eq!(
        scalar_i64(&client.query("SELECT count(*) FROM items").await.unwrap()),
        ITEMS as i64
    );

    // information_schema lists the tables.
    let tables = client
        .query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name")
        .await
        .unwrap();
    assert_eq!(
        strings(&tables, "table_name"),
        ["availability_snapshot", "items", "nodes"]
    );

    // Types the drivers map: Utf8 (not Utf8View), timestamps without zone.
    let typed = client
        .query("SELECT item_id, updated_at, region FROM availability_snapshot LIMIT 1")
        .await
        .unwrap();
    let schema = typed[0].schema();
    assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
    assert_eq!(
        schema.field(1).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, None)
    );
    assert_eq!(schema.field(2).data_type(), &DataType::Utf8);

    // A new snapshot replaces every table without a restart.
    publish(dir.path(), "r2", 1);
    let new_total = region_total(1, "east");
    assert!(
        eventually(Duration::from_secs(30), || {
            let inner = client.inner.clone();
            async move {
                let mut c = Client { inner, token: None };
                c.query(sql).await.map(|b| scalar_i64(&b)).ok() == Some(new_total)
            }
        })
        .await,
        "r2 was not picked up"
    );
}

#[tokio::test]
async fn a_running_query_finishes_on_the_snapshot_it_started_on() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let server = Server::start(dir.path(), &[]);
    let mut client = server.client().await;

    let info = client
        .info("SELECT available_qty FROM availability_snapshot")
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let stream = client.inner.do_get(client.request(ticket)).await.unwrap().into_inner();
    let mut batches =
        arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(stream.map(|r| r.map_err(Into::into)));
    let first = batches.next().await.unwrap().unwrap();

    publish(dir.path(), "r2", 1);
    let sql = "SELECT sum(available_qty) FROM availability_snapshot WHERE region = 'east'";
    let new_total = region_total(1, "east");
    assert!(
        eventually(Duration::from_secs(30), || {
            let inner = client.inner.clone();
            async move {
                let mut c = Client { inner, token: None };
                c.query(sql).await.map(|b| scalar_i64(&b)).ok() == Some(new_total)
            }
        })
        .await
    );

    let mut all = vec![first];
    while let Some(batch) = batches.next().await {
        all.push(batch.unwrap());
    }
    let sum: i64 = all
        .iter()
        .map(|b| arrow::compute::sum(b.column(0).as_any().downcast_ref::<Int64Array>().unwrap()).unwrap_or(0))
        .sum();
    assert_eq!(rows(&all), ITEMS * NODES);
    assert_eq!(
        sum,
        region_total(0, "east") + region_total(0, "west"),
        "the old query saw r2's data"
    );
}

#[tokio::test]
async fn bad_requests_get_precise_codes_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let server = Server::start(dir.path(), &[]);
    let mut client = server.client().await;
    let before: Vec<_> = walk(dir.path());

    for (sql, code) in [
        ("SELEC * FROM items", Code::InvalidArgument),
        ("SELECT nope FROM items", Code::InvalidArgument),
        ("SELECT * FROM no_such_table", Code::NotFound),
        ("SELECT * FROM '/etc/passwd'", Code::PermissionDenied),
        (
            "SELECT * FROM 'snapshots/r1/items/part-0.parquet'",
            Code::PermissionDenied,
        ),
        ("CREATE TABLE t (a INT)", Code::PermissionDenied),
        ("DROP TABLE items", Code::PermissionDenied),
        ("INSERT INTO items (item_id) VALUES ('x')", Code::PermissionDenied),
        ("DELETE FROM items", Code::PermissionDenied),
        ("COPY items TO '/tmp/stockflight-copy.parquet'", Code::PermissionDenied),
        (
            "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc/'",
            Code::PermissionDenied,
        ),
        ("SET datafusion.execution.batch_size = 1", Code::PermissionDenied),
        ("CREATE VIEW v AS SELECT 1", Code::PermissionDenied),
    ] {
        let err = client.query(sql).await.expect_err(sql);
        assert_eq!(err.code(), code, "{sql}: {err}");
    }
    let err = client.query("SELEC 1").await.unwrap_err();
    assert!(err.message().contains("SELEC"), "the parser's message: {err}");
    assert_eq!(walk(dir.path()), before, "a refused statement changed the storage");
    assert!(!std::path::Path::new("/tmp/stockflight-copy.parquet").exists());
    // Still serving.
    assert_eq!(
        scalar_i64(&client.query("SELECT count(*) FROM nodes").await.unwrap()),
        NODES as i64
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn prepared_statements_bind_parameters() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let server = Server::start(dir.path(), &[]);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut sql = FlightSqlServiceClient::new(channel);
    let mut prepared = sql
        .prepare(
            "SELECT item_id, price FROM items WHERE department = $1 ORDER BY item_id".into(),
            None,
        )
        .await
        .unwrap();
    // The dataset schema is known at prepare time (an empty one means UPDATE to JDBC).
    let dataset = prepared.dataset_schema().unwrap().clone();
    assert_eq!(dataset.fields().len(), 2);
    assert_eq!(dataset.field(0).data_type(), &DataType::Utf8);
    assert_eq!(prepared.parameter_schema().unwrap().fields().len(), 1);

    let params = RecordBatch::try_from_iter([(
        "$1",
        std::sync::Arc::new(StringArray::from(vec!["toys"])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    prepared.set_parameters(params).unwrap();
    let info = prepared.execute().await.unwrap();
    let mut batches = Vec::new();
    for endpoint in &info.endpoint {
        let stream = sql.do_get(endpoint.ticket.clone().unwrap()).await.unwrap();
        batches.extend(futures::TryStreamExt::try_collect::<Vec<_>>(stream).await.unwrap());
    }
    let expected: Vec<String> = (0..ITEMS)
        .filter(|i| DEPARTMENTS[i % 4] == "toys")
        .map(|i| format!("sku-{i:04}"))
        .collect();
    assert_eq!(strings(&batches, "item_id"), expected);
    prepared.close().await.unwrap();
}

#[tokio::test]
async fn metadata_commands_answer_what_drivers_ask() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let server = Server::start(dir.path(), &[]);
    let mut client = server.client().await;

    let catalogs = client.command_info(CommandGetCatalogs {}.as_any()).await.unwrap();
    assert_eq!(
        strings(&client.fetch(&catalogs).await.unwrap(), "catalog_name"),
        ["stockflight"]
    );

    let schemas = CommandGetDbSchemas {
        catalog: Some("stockflight".into()),
        db_schema_filter_pattern: Some("pub%".into()),
    };
    let info = client.command_info(schemas.as_any()).await.unwrap();
    assert_eq!(
        strings(&client.fetch(&info).await.unwrap(), "db_schema_name"),
        ["public"]
    );

    let tables = CommandGetTables {
        catalog: Some("stockflight".into()),
        db_schema_filter_pattern: Some("public".into()),
        table_name_filter_pattern: Some("avail%".into()),
        table_types: vec!["TABLE".into()],
        include_schema: true,
    };
    let info = client.command_info(tables.as_any()).await.unwrap();
    let batches = client.fetch(&info).await.unwrap();
    assert_eq!(strings(&batches, "table_name"), ["availability_snapshot"]);
    let schema_bytes = batches[0].column_by_name("table_schema").unwrap();
    let schema_bytes = schema_bytes
        .as_any()
        .downcast_ref::<arrow::array::BinaryArray>()
        .unwrap();
    let schema = arrow::ipc::convert::try_schema_from_ipc_buffer(schema_bytes.value(0)).unwrap();
    assert!(
        schema.field_with_name("region").is_ok(),
        "partition column listed: {schema:?}"
    );
    assert_eq!(schema.field_with_name("item_id").unwrap().data_type(), &DataType::Utf8);

    // Ordered by name, as JDBC's getTableTypes promises.
    let info = client.command_info(CommandGetTableTypes {}.as_any()).await.unwrap();
    assert_eq!(
        strings(&client.fetch(&info).await.unwrap(), "table_type"),
        ["LIVE TABLE", "LIVE VIEW", "TABLE", "VIEW"]
    );

    let keys = CommandGetPrimaryKeys {
        catalog: None,
        db_schema: None,
        table: "items".into(),
    };
    let info = client.command_info(keys.as_any()).await.unwrap();
    assert_eq!(strings(&client.fetch(&info).await.unwrap(), "column_name"), ["item_id"]);
    let keys = CommandGetPrimaryKeys {
        catalog: None,
        db_schema: None,
        table: "availability_snapshot".into(),
    };
    let info = client.command_info(keys.as_any()).await.unwrap();
    assert_eq!(rows(&client.fetch(&info).await.unwrap()), 0);

    let imported = CommandGetImportedKeys {
        catalog: None,
        db_schema: None,
        table: "items".into(),
    };
    let info = client.command_info(imported.as_any()).await.unwrap();
    assert_eq!(rows(&client.fetch(&info).await.unwrap()), 0);

    let all_info = CommandGetSqlInfo { info: vec![] };
    let info = client.command_info(all_info.as_any()).await.unwrap();
    assert!(rows(&client.fetch(&info).await.unwrap()) > 80);

    let types = CommandGetXdbcTypeInfo { data_type: None };
    let info = client.command_info(types.as_any()).await.unwrap();
    assert!(rows(&client.fetch(&info).await.unwrap()) >= 10);
}

#[tokio::test]
async fn repeated_statements_come_from_the_result_cache_and_random_ones_never_do() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let server = Server::start(dir.path(), &[]);
    let mut client = server.client().await;
    let sql = "SELECT region, sum(available_qty) AS qty FROM availability_snapshot GROUP BY region ORDER BY region";
    let hits = || result_cache(&server, "hit");

    let first = client.query(sql).await.unwrap();
    let before = hits().await;
    let second = client.query(sql).await.unwrap();
    assert_eq!(hits().await, before + 1.0, "the second run is a hit");
    assert_eq!(
        arrow::compute::concat_batches(&first[0].schema(), &first).unwrap(),
        arrow::compute::concat_batches(&second[0].schema(), &second).unwrap()
    );
    let east = |batches: &[RecordBatch]| {
        let regions = strings(batches, "region");
        let qty: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                let a = b
                    .column_by_name("qty")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                a.values().to_vec()
            })
            .collect();
        qty[regions.iter().position(|r| r == "east").unwrap()]
    };
    assert_eq!(east(&second), region_total(0, "east"));

    // random() is volatile: computed afresh every time, never a hit.
    let random = "SELECT random() AS r";
    let before = hits().await;
    let draws: Vec<u64> = futures::future::join_all((0..3).map(|_| {
        let inner = client.inner.clone();
        async move {
            let batches = Client { inner, token: None }.query(random).await.unwrap();
            let draw = batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Float64Array>()
                .unwrap();
            draw.value(0).to_bits()
        }
    }))
    .await;
    assert_eq!(hits().await, before);
    assert!(draws[0] != draws[1] || draws[1] != draws[2], "{draws:?}");

    // A new snapshot comes with an empty cache: the same statement sees the new data.
    publish(dir.path(), "r2", 1);
    let wanted = region_total(1, "east");
    assert!(
        eventually(Duration::from_secs(30), || {
            let inner = client.inner.clone();
            async move { Client { inner, token: None }.query(sql).await.ok().map(|b| east(&b)) == Some(wanted) }
        })
        .await,
        "r2 was not served: {}",
        server.log_text()
    );
}

#[tokio::test]
async fn memory_limit_fails_the_query_not_the_server() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let server = Server::start(dir.path(), &["--limits-query-memory-mb", "2"]);
    let mut client = server.client().await;
    let err = client
        .query("SELECT value FROM generate_series(1, 3000000) ORDER BY value DESC")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert_eq!(
        scalar_i64(&client.query("SELECT count(*) FROM items").await.unwrap()),
        ITEMS as i64
    );
}

#[tokio::test]
async fn the_process_wide_memory_budget_fails_the_query_not_the_server() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let sort = "SELECT value FROM generate_series(1, 3000000) ORDER BY value DESC";
    // Within a query's own limit of 256 MiB (and the default budget) the sort runs...
    let roomy = Server::start(dir.path(), &["--limits-query-memory-mb", "256"]);
    let sorted = roomy.client().await.query(sort).await.unwrap();
    assert_eq!(sorted.iter().map(|b| b.num_rows()).sum::<usize>(), 3_000_000);
    drop(roomy);
    // ...and with the same own limit but 2 MiB for all queries together it cannot.
    let server = Server::start(
        dir.path(),
        &["--limits-query-memory-mb", "256", "--limits-total-memory-mb", "2"],
    );
    let mut client = server.client().await;
    let err = client.query(sort).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert_eq!(
        scalar_i64(&client.query("SELECT count(*) FROM items").await.unwrap()),
        ITEMS as i64
    );
}

#[tokio::test]
async fn long_queries_get_keep_alives_and_hit_the_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let server = Server::start(
        dir.path(),
        &["--server-keep-alive-secs", "1", "--limits-query-timeout-secs", "4"],
    );
    let mut client = server.client().await;
    let info = client
        .info("SELECT max(value % 7) FROM generate_series(1, 100000000000)")
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let stream = client.inner.do_get(client.request(ticket)).await.unwrap().into_inner();
    let mut batches =
        arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(stream.map(|r| r.map_err(Into::into)));
    let mut empty = 0;
    let err = loop {
        match batches.next().await {
            Some(Ok(b)) => {
                assert_eq!(b.num_rows(), 0, "the query cannot finish within 4 s");
                empty += 1;
            }
            Some(Err(e)) => break into_status(e),
            None => panic!("stream ended without the time-limit error"),
        }
    };
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    assert!(empty >= 2, "expected keep-alive batches every second, got {empty}");
}

#[tokio::test]
async fn cancel_and_disconnect_stop_queries() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "r1", 0);
    let server = Server::start(dir.path(), &["--server-keep-alive-secs", "1"]);
    let mut client = server.client().await;
    let slow = "SELECT max(value % 7) FROM generate_series(1, 100000000000)";

    // CancelFlightInfo.
    let info = client.info(slow).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let stream = client.inner.do_get(client.request(ticket)).await.unwrap().into_inner();
    let request = CancelFlightInfoRequest {
        info: Some(info.clone()),
    };
    let action = Action {
        r#type: "CancelFlightInfo".into(),
        body: request.encode_to_vec().into(),
    };
    let mut results = client
        .inner
        .do_action(client.request(action))
        .await
        .unwrap()
        .into_inner();
    let result = CancelFlightInfoResult::decode(results.next().await.unwrap().unwrap().body).unwrap();
    assert_eq!(result.status, CancelStatus::Cancelled as i32);
    let mut batches =
        arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(stream.map(|r| r.map_err(Into::into)));
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match batches.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Some(into_status(e)),
                None => return None,
            }
        }
    })
    .await
    .expect("the cancelled query stopped");
    assert_eq!(outcome.expect("an error status").code(), Code::Cancelled);

    // A client that goes away: the query stops (no query left running).
    let info = client.info(slow).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let stream = client.inner.do_get(client.request(ticket)).await.unwrap().into_inner();
    assert!(metric(&server, "stockflight_server_queries_running").await >= 1.0);
    drop(stream);
    assert!(
        eventually(Duration::from_secs(30), || async {
            metric(&server, "stockflight_server_queries_running").await == 0.0
        })
        .await,
        "the abandoned query kept running"
    );
    assert!(server.log_text().contains("abandoned"), "{}", server.log_text());
}

/// The server's /metrics page.
async fn metrics_text(server: &Server) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(&server.metrics_addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

/// A metric's value from the server's /metrics endpoint (0 when absent).
async fn metric(server: &Server, name: &str) -> f64 {
    metrics_text(server)
        .await
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// How many result-cache lookups had `outcome` (`hit` or `miss`).
async fn result_cache(server: &Server, outcome: &str) -> f64 {
    let prefix = format!("stockflight_server_result_cache_total{{outcome=\"{outcome}\"}} ");
    metrics_text(server)
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

//! Expected answers computed by the tests themselves, in plain Rust, from the streams they
//! produce (never by the code under test), and the real client programs' answers to compare
//! them with: ADBC (Python, `tests/python/e2e_query.py`) and JDBC (Java, `E2eQuery`).
//!
//! Status, measures and roll-up levels follow `batch/README.md` ("Output tables").

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::Instant;

use stockflight_tests::require;

/// Reference attributes of an (item, node) row, `unknown` where the reference has none.
pub struct Attributes {
    /// The node's region.
    pub region: String,
    /// The node's type.
    pub node_type: String,
    /// The node's state, if it has one.
    pub state: Option<String>,
    /// The item's department.
    pub department: String,
    /// The item's category.
    pub category: String,
}

/// The test's own reference data: the attributes of `(item, node)` (either may be empty).
pub type AttributesOf<'a> = &'a dyn Fn(&str, &str) -> Attributes;

/// The measures of one group.
#[derive(Default)]
pub struct Measures {
    items_tracked: i64,
    by_status: [i64; 5],
    units_available: i64,
    units_reserved: i64,
}

impl Measures {
    pub fn add(&mut self, row: &super::ingest::Row) {
        self.items_tracked += 1;
        self.by_status[row.status as usize] += 1;
        self.units_available += row.available_qty;
        self.units_reserved += row.reserved_qty;
    }

    pub fn in_stock_rate(&self) -> Option<f64> {
        let not_discontinued = self.items_tracked - self.by_status[4];
        (not_discontinued > 0).then(|| (self.by_status[1] + self.by_status[2]) as f64 / not_discontinued as f64)
    }

    /// `items_tracked, in_stock, low_stock, out_of_stock, discontinued, in_stock_rate,
    /// units_available, units_reserved`, as canonical cells.
    pub fn cells(&self) -> Vec<String> {
        let mut cells = vec![self.items_tracked.to_string()];
        cells.extend(self.by_status[1..].iter().map(i64::to_string));
        cells.push(self.in_stock_rate().map_or(NULL.into(), float));
        cells.push(self.units_available.to_string());
        cells.push(self.units_reserved.to_string());
        cells
    }
}

/// How a NULL cell reads in canonical text.
pub const NULL: &str = "NULL";
/// The measure columns of the aggregate tables, in order.
pub const MEASURES: &str =
    "items_tracked, in_stock, low_stock, out_of_stock, discontinued, in_stock_rate, units_available, units_reserved";
/// Columns whose values are floating point: compared as the double they denote.
pub const FLOAT_COLUMNS: [&str; 1] = ["in_stock_rate"];

/// A double as one canonical text (Rust's shortest round-trip form).
pub fn float(v: f64) -> String {
    format!("{v}")
}

/// A query and the rows it must return (canonical cells; order does not matter).
pub struct Expected {
    /// The query.
    pub sql: String,
    /// Its columns.
    pub columns: Vec<String>,
    /// Its rows.
    pub rows: Vec<Vec<String>>,
}

impl Expected {
    /// The same query with only the rows `keep` selects.
    pub fn filtered(mut self, keep: impl Fn(&Vec<String>) -> bool) -> Self {
        self.rows.retain(|r| keep(r));
        self
    }

    /// `SELECT select FROM from_where` and the rows it must return.
    pub fn new(select: &str, from_where: &str, rows: Vec<Vec<String>>) -> Self {
        Self {
            sql: format!("SELECT {select} FROM {from_where}"),
            columns: select.split(',').map(|c| c.trim().to_string()).collect(),
            rows,
        }
    }
}

/// Rows per (item, node): the model of the availability table.
pub type Table = HashMap<(String, String), super::ingest::Row>;

/// `availability_by_node`-shaped rows of `table`, as `from` (the table queried) returns them.
pub fn by_node(table: &Table, attributes: AttributesOf, from: &str) -> Expected {
    let mut groups: BTreeMap<String, Measures> = BTreeMap::new();
    for ((_, node), row) in table {
        groups.entry(node.clone()).or_default().add(row);
    }
    let rows = groups
        .iter()
        .map(|(node, m)| {
            let a = attributes("", node);
            let mut cells = vec![node.clone(), a.node_type, a.region, a.state.unwrap_or(NULL.into())];
            cells.extend(m.cells());
            cells
        })
        .collect();
    Expected::new(
        &format!("node_id, node_type, region, state, {MEASURES}"),
        &format!("{from} ORDER BY node_id"),
        rows,
    )
}

/// `availability_by_region_category`-shaped rows of `table`, as `from` returns them.
pub fn by_region_category(table: &Table, attributes: AttributesOf, from: &str) -> Expected {
    let mut groups: BTreeMap<[String; 4], Measures> = BTreeMap::new();
    for ((item, node), row) in table {
        let a = attributes(item, node);
        let null = || NULL.to_string();
        for key in [
            [
                "category".into(),
                a.region.clone(),
                a.department.clone(),
                a.category.clone(),
            ],
            ["department".into(), a.region.clone(), a.department.clone(), null()],
            ["region".into(), a.region.clone(), null(), null()],
            ["total".into(), null(), null(), null()],
        ] {
            groups.entry(key).or_default().add(row);
        }
    }
    let rows = groups
        .iter()
        .map(|(key, m)| key.iter().cloned().chain(m.cells()).collect())
        .collect();
    Expected::new(
        &format!("level, region, department, category, {MEASURES}"),
        &format!("{from} ORDER BY level, region, department, category"),
        rows,
    )
}

/// The drill-down rows that `keep` selects.
pub fn snapshot(
    table: &Table,
    attributes: AttributesOf,
    from_where: &str,
    keep: impl Fn(&Attributes, &super::ingest::Row) -> bool,
) -> Expected {
    let status_name = ["unknown", "in_stock", "low_stock", "out_of_stock", "discontinued"];
    let rows = table
        .iter()
        .filter_map(|((item, node), row)| {
            let a = attributes(item, node);
            keep(&a, row).then(|| {
                vec![
                    item.clone(),
                    node.clone(),
                    a.region,
                    a.node_type,
                    a.department,
                    a.category,
                    row.available_qty.to_string(),
                    row.reserved_qty.to_string(),
                    row.status.to_string(),
                    status_name[row.status as usize].to_string(),
                    row.source.clone(),
                    row.sequence.to_string(),
                    // Cassandra keeps milliseconds; clients see microseconds.
                    (row.event_time_ms * 1000).to_string(),
                ]
            })
        })
        .collect();
    Expected::new(
        "item_id, node_id, region, node_type, department, category, available_qty, reserved_qty, status, \
         status_name, source, sequence, event_time",
        from_where,
        rows,
    )
}

/// One client's answer to one query, cells in canonical text.
pub struct Answer {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
}

/// Parses the JSON the client programs print (see `tests/python/e2e_query.py`).
pub fn parse_answers(client: &str, stdout: &str) -> Vec<Answer> {
    let json: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{client}: output is not JSON ({e}):\n{stdout}"));
    let results = json
        .as_array()
        .unwrap_or_else(|| panic!("{client}: not a list: {json}"));
    results
        .iter()
        .map(|result| {
            let columns: Vec<String> = result["columns"]
                .as_array()
                .expect("columns")
                .iter()
                .map(|c| c.as_str().expect("a column name").to_string())
                .collect();
            let rows = result["rows"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|row| {
                    row.as_array()
                        .expect("a row is a list")
                        .iter()
                        .zip(&columns)
                        .map(|(cell, column)| canonical(client, column, cell))
                        .collect()
                })
                .collect();
            Answer { columns, rows }
        })
        .collect()
}

/// One JSON cell as canonical text (floating point as the double it denotes).
pub fn canonical(client: &str, column: &str, cell: &serde_json::Value) -> String {
    match cell {
        serde_json::Value::Null => NULL.into(),
        serde_json::Value::String(s) if FLOAT_COLUMNS.contains(&column) => float(
            s.parse()
                .unwrap_or_else(|e| panic!("{client}: {column} = {s:?} is not a number: {e}")),
        ),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) if FLOAT_COLUMNS.contains(&column) => {
            panic!("{client}: {column} = {n} came as a JSON number, which may be rounded")
        }
        other => other.to_string(),
    }
}

/// Asserts that `answer` has exactly the expected columns and rows (in any order).
pub fn assert_answer(client: &str, expected: &Expected, answer: &Answer) {
    assert_eq!(
        answer.columns, expected.columns,
        "{client}: columns of `{}`",
        expected.sql
    );
    let mut want = expected.rows.clone();
    let mut got = answer.rows.clone();
    want.sort();
    got.sort();
    if want != got {
        let lines = |rows: &[Vec<String>], other: &[Vec<String>]| {
            let differing = rows.iter().filter(|r| !other.contains(r));
            differing
                .take(8)
                .map(|r| format!("\n  {}", r.join(" | ")))
                .collect::<String>()
        };
        panic!(
            "{client}: `{}` returned {} rows, expected {}\ncolumns: {}\nexpected rows not returned:{}\n\
             returned rows not expected:{}",
            expected.sql,
            got.len(),
            want.len(),
            expected.columns.join(" | "),
            lines(&want, &got),
            lines(&got, &want)
        );
    }
}

/// Runs a client program, panicking with its output (and the server's log) if it fails.
pub fn run_client(client: &str, cmd: &mut Command, server: &super::server::Server) -> String {
    let started = Instant::now();
    let output = cmd.output().unwrap_or_else(|e| panic!("{client}: cannot start: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{client} failed with {}:\n{stdout}\n{}\nserver log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        server.log_text()
    );
    eprintln!("{client}: answered in {:?}", started.elapsed());
    stdout
}

/// `availability_by_item`-shaped measures of `table` (id, department, category, measures), as
/// `from` returns them.
pub fn by_item(table: &Table, attributes: AttributesOf, from: &str) -> Expected {
    let mut groups: BTreeMap<String, Measures> = BTreeMap::new();
    for ((item, _), row) in table {
        groups.entry(item.clone()).or_default().add(row);
    }
    let rows = groups
        .iter()
        .map(|(item, m)| {
            let a = attributes(item, "");
            let mut cells = vec![item.clone(), a.department, a.category];
            cells.extend(m.cells());
            cells
        })
        .collect();
    Expected::new(
        &format!("item_id, department, category, {MEASURES}"),
        &format!("{from} ORDER BY item_id"),
        rows,
    )
}

/// Runs `sql` through ADBC (Python) and JDBC (Java) against `server` as `user`, and returns each
/// client's answers: `[("ADBC", answers), ("JDBC", answers)]`.
pub fn both_clients(
    server: &super::server::Server,
    user: &str,
    password: &str,
    sql: &[&str],
) -> Vec<(&'static str, Vec<Answer>)> {
    let adbc = run_client(
        "ADBC (Python)",
        Command::new(require("STOCKFLIGHT_PYTHON"))
            .arg(stockflight_tests::repo_root().join("tests/python/e2e_query.py"))
            .args([&server.uri(), user, password])
            .args(sql),
        server,
    );
    let jdbc = run_client(
        "JDBC (Java)",
        Command::new("java")
            .args(require("STOCKFLIGHT_JAVA_OPTS").split_whitespace())
            .args(["-Duser.timezone=UTC", "-cp", &require("STOCKFLIGHT_JDBC_CLASSPATH")])
            .args(["io.stockflight.clients.E2eQuery", &server.addr, user, password])
            .args(sql),
        server,
    );
    vec![
        ("ADBC", parse_answers("ADBC", &adbc)),
        ("JDBC", parse_answers("JDBC", &jdbc)),
    ]
}

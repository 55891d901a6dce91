//! Receipts: how the workers of a distributed run tell the coordinator what they wrote.
//!
//! A worker that closes a Parquet file (or ends its part of the scan) inserts one row into
//! `batch_run_receipts`, keyed by the run id and the run lease's fencing token, before the task
//! that wrote it ends. The coordinator reads them once the whole plan has finished: every task
//! has then ended, so every receipt is in, and the manifest lists exactly the files the workers
//! wrote, never a listing of the store (eventually consistent on OpenStack Swift). The token
//! keeps an earlier, failed attempt of the same run id out. Writes and reads use the same
//! consistency (`auto`: local quorum once the keyspace has replicas), so a read sees every write.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use scylla::client::session::Session;
use scylla::statement::unprepared::Statement;
use serde::{Deserialize, Serialize};
use stockflight_common::cql;
use stockflight_common::sections::Consistency;
use stockflight_proto::layout::TableManifest;
use tokio::sync::Mutex;

use crate::error::Error;

/// The table of receipts.
pub const RECEIPTS_TABLE: &str = "batch_run_receipts";
/// Receipts outlive any run by far, then expire.
const RECEIPT_TTL_SECS: u64 = 7 * 24 * 3600;

/// `CREATE TABLE` of the receipts in `keyspace`.
pub fn create_table(keyspace: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.{RECEIPTS_TABLE} (run_id text, epoch bigint, key text, \
         table_name text, rows bigint, bytes bigint, ranges bigint, page_retries bigint, \
         PRIMARY KEY ((run_id, epoch), key)) WITH default_time_to_live = {RECEIPT_TTL_SECS}"
    )
}

/// Where the receipts of one run go: carried in the plan to every worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBook {
    /// Cassandra contact points.
    pub nodes: Vec<String>,
    /// Keyspace of the run (and of its lease).
    pub keyspace: String,
    /// Consistency of the receipts' writes and reads.
    pub consistency: Consistency,
    /// The run id.
    pub run_id: String,
    /// The run lease's fencing token.
    pub epoch: i64,
}

/// What one receipt says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// A Parquet file of `table`, as its writer wrote it.
    File {
        /// The output table.
        table: String,
        /// Object path relative to the storage root.
        path: String,
        /// Rows in the file.
        rows: u64,
        /// Bytes of the file, as uploaded.
        bytes: u64,
    },
    /// One task's part of the scan.
    Scan {
        /// Stage task index.
        task: usize,
        /// Rows read from Cassandra.
        rows: u64,
        /// Token ranges read.
        ranges: u64,
        /// Page requests retried.
        page_retries: u64,
    },
}

/// What the receipts of a run add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipts {
    /// Every table's files, sorted, with total rows and bytes.
    pub tables: BTreeMap<String, TableManifest>,
    /// Rows scanned over all tasks.
    pub rows_scanned: u64,
    /// Token ranges scanned over all tasks.
    pub ranges: u64,
    /// Page requests retried over all tasks.
    pub page_retries: u64,
    /// Scan tasks that reported.
    pub scan_tasks: usize,
}

impl Receipts {
    /// Adds up `receipts`; `partitioned` names the tables partitioned by a column and which.
    pub fn of(receipts: impl IntoIterator<Item = Receipt>, partitioned: &[(&str, &str)]) -> Self {
        let mut out = Self::default();
        for receipt in receipts {
            match receipt {
                Receipt::File {
                    table,
                    path,
                    rows,
                    bytes,
                } => {
                    let entry = out.tables.entry(table.clone()).or_insert_with(|| TableManifest {
                        rows: 0,
                        bytes: 0,
                        files: vec![],
                        partition_columns: partitioned
                            .iter()
                            .filter(|(t, _)| *t == table)
                            .map(|(_, c)| c.to_string())
                            .collect(),
                    });
                    entry.rows += rows;
                    entry.bytes += bytes;
                    entry.files.push(path);
                }
                Receipt::Scan {
                    rows,
                    ranges,
                    page_retries,
                    ..
                } => {
                    out.rows_scanned += rows;
                    out.ranges += ranges;
                    out.page_retries += page_retries;
                    out.scan_tasks += 1;
                }
            }
        }
        for table in out.tables.values_mut() {
            table.files.sort();
        }
        out
    }
}

impl ReceiptBook {
    /// Records `receipt` (a worker, before its task ends).
    pub async fn record(&self, receipt: &Receipt) -> Result<(), Error> {
        let session = session(&self.nodes).await?;
        let (key, table, rows, bytes, ranges, retries) = match receipt {
            Receipt::File {
                table,
                path,
                rows,
                bytes,
            } => (path.clone(), Some(table.clone()), *rows, *bytes, 0, 0),
            Receipt::Scan {
                task,
                rows,
                ranges,
                page_retries,
            } => (format!("scan/{task}"), None, *rows, 0, *ranges, *page_retries),
        };
        let mut insert = Statement::new(format!(
            "INSERT INTO {}.{RECEIPTS_TABLE} (run_id, epoch, key, table_name, rows, bytes, ranges, page_retries) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            self.keyspace
        ));
        insert.set_consistency(cql::consistency(&session, &self.keyspace, self.consistency));
        session
            .query_unpaged(
                insert,
                (
                    &self.run_id,
                    self.epoch,
                    &key,
                    table,
                    rows as i64,
                    bytes as i64,
                    ranges as i64,
                    retries as i64,
                ),
            )
            .await
            .map_err(|e| Error::Cassandra(format!("record the receipt of {key}: {e}")))?;
        Ok(())
    }

    /// Every receipt of the run (the coordinator, after the plan finished).
    pub async fn read(&self, session: &Session) -> Result<Vec<Receipt>, Error> {
        let mut select = Statement::new(format!(
            "SELECT key, table_name, rows, bytes, ranges, page_retries FROM {}.{RECEIPTS_TABLE} \
             WHERE run_id = ? AND epoch = ?",
            self.keyspace
        ));
        select.set_consistency(cql::consistency(session, &self.keyspace, self.consistency));
        select.set_page_size(5000);
        let fail =
            |e: &dyn std::fmt::Display| Error::Cassandra(format!("read the receipts of run {}: {e}", self.run_id));
        let mut rows = session
            .query_iter(select, (&self.run_id, self.epoch))
            .await
            .map_err(|e| fail(&e))?
            .rows_stream::<(
                String,
                Option<String>,
                Option<i64>,
                Option<i64>,
                Option<i64>,
                Option<i64>,
            )>()
            .map_err(|e| fail(&e))?;
        let mut out = Vec::new();
        use futures::TryStreamExt;
        while let Some((key, table, rows_, bytes, ranges, retries)) = rows.try_next().await.map_err(|e| fail(&e))? {
            let n = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
            out.push(match (table, key.strip_prefix("scan/")) {
                (Some(table), _) => Receipt::File {
                    table,
                    path: key,
                    rows: n(rows_),
                    bytes: n(bytes),
                },
                (None, Some(task)) => Receipt::Scan {
                    task: task.parse().unwrap_or_default(),
                    rows: n(rows_),
                    ranges: n(ranges),
                    page_retries: n(retries),
                },
                (None, None) => return Err(fail(&format!("a receipt without a table: {key}"))),
            });
        }
        Ok(out)
    }
}

/// One Cassandra session per set of contact points in this process: the tasks of every run a
/// worker serves share it.
pub async fn session(nodes: &[String]) -> Result<Arc<Session>, Error> {
    static SESSIONS: std::sync::OnceLock<Mutex<HashMap<Vec<String>, Arc<Session>>>> = std::sync::OnceLock::new();
    let mut sessions = SESSIONS.get_or_init(Default::default).lock().await;
    if let Some(session) = sessions.get(nodes) {
        return Ok(session.clone());
    }
    let session = Arc::new(crate::scan::connect(nodes).await?);
    sessions.insert(nodes.to_vec(), session.clone());
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_add_up_per_table_and_scan() {
        let file = |table: &str, path: &str, rows| Receipt::File {
            table: table.into(),
            path: path.into(),
            rows,
            bytes: rows * 10,
        };
        let receipts = Receipts::of(
            [
                file("t", "t/part-1-0.parquet", 3),
                file("s", "s/region=w/part-1.parquet", 5),
                file("t", "t/part-0-0.parquet", 2),
                Receipt::Scan {
                    task: 0,
                    rows: 4,
                    ranges: 8,
                    page_retries: 1,
                },
                Receipt::Scan {
                    task: 1,
                    rows: 1,
                    ranges: 8,
                    page_retries: 0,
                },
            ],
            &[("s", "region")],
        );
        let t = &receipts.tables["t"];
        assert_eq!(t.files, ["t/part-0-0.parquet", "t/part-1-0.parquet"]);
        assert_eq!((t.rows, t.bytes), (5, 50));
        assert!(t.partition_columns.is_empty());
        assert_eq!(receipts.tables["s"].partition_columns, ["region"]);
        assert_eq!(
            (
                receipts.rows_scanned,
                receipts.ranges,
                receipts.page_retries,
                receipts.scan_tasks
            ),
            (5, 16, 1, 2)
        );
    }
}

//! The run lease: a row in Cassandra that only one `stockflight-batch` process holds at a time,
//! so two processes (two `--once` jobs, or a scheduled job and a manual one) never run at once.
//!
//! Taken with a lightweight transaction (`INSERT … IF NOT EXISTS USING TTL`), renewed by its
//! owner every third of the TTL (`UPDATE … IF owner = me`), deleted at the end of the run
//! (`DELETE … IF owner = me`). A process that dies without releasing it frees it when the TTL
//! runs out. The lease row lives in the availability keyspace, so jobs over different keyspaces
//! do not exclude each other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scylla::client::session::Session;
use scylla::response::query_result::QueryRowsResult;
use scylla::value::{CqlTimestamp, CqlValue, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::Error;

/// The table holding the lease (one row per lease name).
pub const LEASE_TABLE: &str = "batch_lease";
/// The lease every run of the job takes.
pub const LEASE_NAME: &str = "stockflight-batch";

/// CQL creating the lease table, idempotent.
pub fn create_lease_table(keyspace: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.{LEASE_TABLE} (name text PRIMARY KEY, owner text, acquired_at timestamp)"
    )
}

/// A lease this process holds: renewed in the background until [`Lease::release`].
#[derive(Debug)]
pub struct Lease {
    inner: Arc<Inner>,
    renewer: JoinHandle<()>,
    lost: watch::Receiver<Option<String>>,
}

#[derive(Debug)]
struct Inner {
    session: Arc<Session>,
    keyspace: String,
    owner: String,
    ttl: Duration,
}

impl Lease {
    /// Takes the lease for `owner`, or fails with [`Error::LeaseHeld`] naming the holder.
    pub async fn acquire(session: Arc<Session>, keyspace: &str, owner: &str, ttl: Duration) -> Result<Self, Error> {
        let cassandra = |what: &str, e: &dyn std::fmt::Display| Error::Cassandra(format!("{what} lease: {e}"));
        session
            .query_unpaged(create_lease_table(keyspace), ())
            .await
            .map_err(|e| cassandra("create the table of the run", &e))?;
        let result = session
            .query_unpaged(
                format!(
                    "INSERT INTO {keyspace}.{LEASE_TABLE} (name, owner, acquired_at) VALUES (?, ?, ?) \
                     IF NOT EXISTS USING TTL ?"
                ),
                (LEASE_NAME, owner, CqlTimestamp(now_ms()), ttl_secs(ttl)),
            )
            .await
            .map_err(|e| cassandra("take the run", &e))?
            .into_rows_result()
            .map_err(|e| cassandra("take the run", &e))?;
        let (applied, holder) = lwt_outcome(&result).map_err(|e| cassandra("take the run", &e))?;
        if !applied {
            return Err(Error::LeaseHeld(holder.unwrap_or_else(|| "unknown".into())));
        }
        tracing::info!(owner, ttl_s = ttl.as_secs(), "run lease taken");
        let inner = Arc::new(Inner {
            session,
            keyspace: keyspace.to_string(),
            owner: owner.to_string(),
            ttl,
        });
        let (tx, lost) = watch::channel(None);
        let renewer = tokio::spawn(renew(inner.clone(), tx));
        Ok(Self { inner, renewer, lost })
    }

    /// Resolves when the lease was lost (not renewed within its TTL, or taken by another
    /// process): the run must stop, as another one may start.
    pub async fn lost(&self) -> Error {
        let mut lost = self.lost.clone();
        match lost.wait_for(Option::is_some).await {
            Ok(reason) => Error::LeaseLost(reason.clone().unwrap_or_default()),
            // The renewer never drops its sender while it runs; pend forever if it did.
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops renewing and deletes the lease row if this process still owns it. Failure to
    /// delete only logs: the TTL frees the lease anyway.
    pub async fn release(self) {
        self.renewer.abort();
        let Inner {
            session,
            keyspace,
            owner,
            ..
        } = self.inner.as_ref();
        let result = session
            .query_unpaged(
                format!("DELETE FROM {keyspace}.{LEASE_TABLE} WHERE name = ? IF owner = ?"),
                (LEASE_NAME, owner.as_str()),
            )
            .await;
        match result {
            Ok(_) => tracing::info!(owner, "run lease released"),
            Err(e) => tracing::warn!(owner, error = %e, "could not release the run lease; it expires with its TTL"),
        }
    }
}

/// Renews every third of the TTL; after a failed renewal retries every second. Reports the
/// lease lost when another owner holds it, or when no renewal succeeded for a whole TTL.
async fn renew(inner: Arc<Inner>, lost: watch::Sender<Option<String>>) {
    let Inner {
        session,
        keyspace,
        owner,
        ttl,
    } = inner.as_ref();
    let cql = format!(
        "UPDATE {keyspace}.{LEASE_TABLE} USING TTL ? SET owner = ?, acquired_at = ? WHERE name = ? IF owner = ?"
    );
    let mut renewed = Instant::now();
    let mut wait = *ttl / 3;
    loop {
        tokio::time::sleep(wait).await;
        let result = session
            .query_unpaged(
                cql.as_str(),
                (
                    ttl_secs(*ttl),
                    owner.as_str(),
                    CqlTimestamp(now_ms()),
                    LEASE_NAME,
                    owner.as_str(),
                ),
            )
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.into_rows_result().map_err(|e| e.to_string()))
            .and_then(|r| lwt_outcome(&r).map_err(|e| e.to_string()));
        match result {
            Ok((true, _)) => {
                renewed = Instant::now();
                wait = *ttl / 3;
            }
            Ok((false, holder)) => {
                let _ = lost.send(Some(format!(
                    "now held by {}",
                    holder.unwrap_or_else(|| "nobody (expired)".into())
                )));
                return;
            }
            Err(e) if renewed.elapsed() >= *ttl => {
                let _ = lost.send(Some(format!("not renewed for {} s: {e}", ttl.as_secs())));
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "run lease renewal failed; retrying");
                wait = Duration::from_secs(1).min(*ttl / 3);
            }
        }
    }
}

/// `[applied]` of a lightweight transaction, and the `owner` it found when not applied.
fn lwt_outcome(result: &QueryRowsResult) -> Result<(bool, Option<String>), String> {
    let owner_column = result.column_specs().get_by_name("owner").map(|(i, _)| i);
    let row: Row = result.single_row().map_err(|e| e.to_string())?;
    let applied = matches!(row.columns.first(), Some(Some(CqlValue::Boolean(true))));
    let owner = owner_column
        .and_then(|i| row.columns.get(i).cloned().flatten())
        .and_then(|v| v.into_string());
    Ok((applied, owner))
}

fn ttl_secs(ttl: Duration) -> i32 {
    ttl.as_secs().clamp(1, i32::MAX as u64) as i32
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A name for this process as a lease owner: host, pid and run id, so the message of a refused
/// process says who holds the lease.
pub fn owner_name(run_id: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}/pid {}/run {run_id}", std::process::id())
}

//! The run lease: a row in Cassandra that only one `stockflight-batch` process holds at a time,
//! so two processes (two `--once` jobs, or a scheduled job and a manual one) never run at once.
//!
//! Taken with a lightweight transaction (`INSERT … IF NOT EXISTS USING TTL`), renewed by its
//! owner every third of the TTL (`UPDATE … IF owner = me`), deleted at the end of the run
//! (`DELETE … IF owner = me`). A process that dies without releasing it frees it when the TTL
//! runs out. The lease row lives in the availability keyspace, so jobs over different keyspaces
//! do not exclude each other.
//!
//! Every acquisition also draws a fencing token, the lease's epoch: a counter in
//! `batch_lease_epoch` (no TTL, so it survives the lease row's expiry) raised by one with a
//! compare-and-set, so a later holder always has a larger token. The lease row carries it, every
//! renewal requires it (`IF owner = me AND epoch = mine`), and the publication records it in the
//! manifest: a run that stalled past its TTL and resumes can neither renew nor publish over a
//! newer holder's snapshot (see [`crate::publish::Fence`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use scylla::client::session::Session;
use scylla::response::query_result::QueryRowsResult;
use scylla::serialize::row::SerializeRow;
use scylla::value::{CqlTimestamp, CqlValue, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::Error;

/// The table holding the lease (one row per lease name).
pub const LEASE_TABLE: &str = "batch_lease";
/// The table holding the last fencing token handed out per lease name (never expires).
pub const EPOCH_TABLE: &str = "batch_lease_epoch";
/// The lease every run of the job takes.
pub const LEASE_NAME: &str = "stockflight-batch";
/// Compare-and-set attempts to draw a fencing token before giving up (each lost attempt means
/// another process drew one meanwhile).
const EPOCH_ATTEMPTS: usize = 20;
/// Tries of one lease statement that fails outright (a timeout or too few replicas: a node of
/// the ring just went down and the coordinator has not noticed yet), about 20 s in all.
const STATEMENT_TRIES: usize = 8;

/// Runs one statement of the lease (most are lightweight transactions), retrying failures with capped exponential
/// backoff. A compare-and-set that timed out may still have applied, so each caller's retry is
/// written to recognise its own earlier success (see [`Lease::acquire`]).
async fn lwt(
    session: &Session,
    what: &str,
    cql: String,
    values: impl SerializeRow + Clone,
) -> Result<QueryRowsResult, String> {
    let attempt = || async {
        session
            .query_unpaged(cql.clone(), values.clone())
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())
    };
    attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(STATEMENT_TRIES - 1),
        )
        .notify(|error, wait| tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "run lease: {what} failed; retrying"))
        .await
}

/// CQL creating the lease table, idempotent.
pub fn create_lease_table(keyspace: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.{LEASE_TABLE} \
         (name text PRIMARY KEY, owner text, acquired_at timestamp, epoch bigint)"
    )
}

/// CQL creating the fencing-token table, idempotent.
pub fn create_epoch_table(keyspace: &str) -> String {
    format!("CREATE TABLE IF NOT EXISTS {keyspace}.{EPOCH_TABLE} (name text PRIMARY KEY, epoch bigint)")
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
    epoch: i64,
}

impl Inner {
    /// Extends the lease if this process still holds it with its token: `Ok(true)`; `Ok(false)`
    /// with the holder found when it does not.
    async fn extend(&self) -> Result<(bool, Option<String>), String> {
        let Self {
            session,
            keyspace,
            owner,
            ttl,
            epoch,
        } = self;
        let result = session
            .query_unpaged(
                format!(
                    "UPDATE {keyspace}.{LEASE_TABLE} USING TTL ? SET owner = ?, acquired_at = ?, epoch = ? \
                     WHERE name = ? IF owner = ? AND epoch = ?"
                ),
                (
                    ttl_secs(*ttl),
                    owner.as_str(),
                    CqlTimestamp(now_ms()),
                    *epoch,
                    LEASE_NAME,
                    owner.as_str(),
                    *epoch,
                ),
            )
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())?;
        lwt_outcome(&result)
    }
}

impl Lease {
    /// Takes the lease for `owner`, or fails with [`Error::LeaseHeld`] naming the holder.
    pub async fn acquire(session: Arc<Session>, keyspace: &str, owner: &str, ttl: Duration) -> Result<Self, Error> {
        let cassandra = |what: &str, e: &dyn std::fmt::Display| Error::Cassandra(format!("{what} lease: {e}"));
        for cql in [create_lease_table(keyspace), create_epoch_table(keyspace)] {
            session
                .query_unpaged(cql, ())
                .await
                .map_err(|e| cassandra("create the table of the run", &e))?;
        }
        add_epoch_column(&session, keyspace).await?;
        let result = lwt(
            &session,
            "take the run",
            format!(
                "INSERT INTO {keyspace}.{LEASE_TABLE} (name, owner, acquired_at) VALUES (?, ?, ?) \
                 IF NOT EXISTS USING TTL ?"
            ),
            (LEASE_NAME, owner, CqlTimestamp(now_ms()), ttl_secs(ttl)),
        )
        .await
        .map_err(|e| cassandra("take the run", &e))?;
        let (applied, holder) = lwt_outcome(&result).map_err(|e| cassandra("take the run", &e))?;
        // Found held by this very owner: an earlier try timed out after it applied.
        if !applied && holder.as_deref() != Some(owner) {
            return Err(Error::LeaseHeld(holder.unwrap_or_else(|| "unknown".into())));
        }
        let epoch = draw_epoch(&session, keyspace).await?;
        let inner = Arc::new(Inner {
            session,
            keyspace: keyspace.to_string(),
            owner: owner.to_string(),
            ttl,
            epoch,
        });
        // Stamp the token on the lease row; from here on every renewal requires it. Every cell
        // is rewritten with the same TTL: a cell outliving the owner (the token alone) would
        // keep the row alive past its holder, and `IF NOT EXISTS` would refuse the next run
        // with no holder to name.
        let stamped = lwt(
            &inner.session,
            "stamp the token on the run",
            format!(
                "UPDATE {keyspace}.{LEASE_TABLE} USING TTL ? SET owner = ?, acquired_at = ?, epoch = ? \
                 WHERE name = ? IF owner = ?"
            ),
            (ttl_secs(ttl), owner, CqlTimestamp(now_ms()), epoch, LEASE_NAME, owner),
        )
        .await
        .map_err(|e| cassandra("stamp the token on the run", &e))?;
        let (applied, holder) = lwt_outcome(&stamped).map_err(|e| cassandra("stamp the token on the run", &e))?;
        if !applied {
            return Err(Error::LeaseLost(format!(
                "taken by {} right after it was acquired",
                holder.unwrap_or_else(|| "nobody (expired)".into())
            )));
        }
        tracing::info!(owner, ttl_s = ttl.as_secs(), lease_epoch = epoch, "run lease taken");
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
/// lease lost when another owner (or token) holds it, or when no renewal succeeded for a whole
/// TTL.
async fn renew(inner: Arc<Inner>, lost: watch::Sender<Option<String>>) {
    let ttl = inner.ttl;
    let mut renewed = Instant::now();
    let mut wait = ttl / 3;
    loop {
        tokio::time::sleep(wait).await;
        match inner.extend().await {
            Ok((true, _)) => {
                renewed = Instant::now();
                wait = ttl / 3;
            }
            Ok((false, holder)) => {
                let _ = lost.send(Some(format!(
                    "now held by {}",
                    holder.unwrap_or_else(|| "nobody (expired)".into())
                )));
                return;
            }
            Err(e) if renewed.elapsed() >= ttl => {
                let _ = lost.send(Some(format!("not renewed for {} s: {e}", ttl.as_secs())));
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "run lease renewal failed; retrying");
                wait = Duration::from_secs(1).min(ttl / 3);
            }
        }
    }
}

impl crate::publish::Fence for Lease {
    fn token(&self) -> u64 {
        self.inner.epoch as u64
    }

    /// One more renewal, now: a lightweight transaction that applies only while this process
    /// holds the lease with its token.
    async fn confirm(&self) -> Result<(), Error> {
        let lost = self.lost.borrow().clone();
        if let Some(reason) = lost {
            return Err(Error::LeaseLost(reason));
        }
        match self.inner.extend().await {
            Ok((true, _)) => Ok(()),
            Ok((false, holder)) => Err(Error::LeaseLost(format!(
                "found held by {} when about to publish",
                holder.unwrap_or_else(|| "nobody (expired)".into())
            ))),
            Err(e) => Err(Error::Cassandra(format!(
                "confirm the run lease before publishing (nothing published): {e}"
            ))),
        }
    }

    fn validity(&self) -> Duration {
        self.inner.ttl
    }
}

/// Adds the `epoch` column to a lease table created before fencing tokens existed.
async fn add_epoch_column(session: &Session, keyspace: &str) -> Result<(), Error> {
    let fail = |e: &dyn std::fmt::Display| Error::Cassandra(format!("read the schema of {LEASE_TABLE}: {e}"));
    let columns = session
        .query_unpaged(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
            (keyspace, LEASE_TABLE),
        )
        .await
        .map_err(|e| fail(&e))?
        .into_rows_result()
        .map_err(|e| fail(&e))?;
    let has_epoch = columns
        .rows::<(String,)>()
        .map_err(|e| fail(&e))?
        .filter_map(Result::ok)
        .any(|(name,)| name == "epoch");
    if !has_epoch {
        tracing::info!(table = LEASE_TABLE, "adding the epoch column to the lease table");
        session
            .query_unpaged(format!("ALTER TABLE {keyspace}.{LEASE_TABLE} ADD epoch bigint"), ())
            .await
            .map_err(|e| Error::Cassandra(format!("add the epoch column to {LEASE_TABLE}: {e}")))?;
    }
    Ok(())
}

/// Raises the lease's fencing token by one with a compare-and-set and returns the new value.
async fn draw_epoch(session: &Session, keyspace: &str) -> Result<i64, Error> {
    let fail = |e: &dyn std::fmt::Display| Error::Cassandra(format!("draw a fencing token: {e}"));
    for _ in 0..EPOCH_ATTEMPTS {
        let last = lwt(
            session,
            "read the fencing token",
            format!("SELECT epoch FROM {keyspace}.{EPOCH_TABLE} WHERE name = ?"),
            (LEASE_NAME,),
        )
        .await
        .map_err(|e| fail(&e))?
        .maybe_first_row::<(Option<i64>,)>()
        .map_err(|e| fail(&e))?;
        // A compare-and-set that timed out after applying is lost here and the next attempt
        // draws one more: tokens only need to grow, gaps are harmless.
        let (next, rows) = match last {
            None | Some((None,)) => (
                1,
                lwt(
                    session,
                    "draw a fencing token",
                    format!("INSERT INTO {keyspace}.{EPOCH_TABLE} (name, epoch) VALUES (?, 1) IF NOT EXISTS"),
                    (LEASE_NAME,),
                )
                .await,
            ),
            Some((Some(last),)) => (
                last + 1,
                lwt(
                    session,
                    "draw a fencing token",
                    format!("UPDATE {keyspace}.{EPOCH_TABLE} SET epoch = ? WHERE name = ? IF epoch = ?"),
                    (last + 1, LEASE_NAME, last),
                )
                .await,
            ),
        };
        let rows = rows.map_err(|e| fail(&e))?;
        if lwt_outcome(&rows).map_err(|e| fail(&e))?.0 {
            return Ok(next);
        }
    }
    Err(fail(&format!("lost the compare-and-set {EPOCH_ATTEMPTS} times")))
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

//! Following the change log (`stockflight_proto::changes`): each served snapshot's
//! [`CurrentState`] loads the changes since its cut-off once, then one poller feeds every state
//! the changes logged since its previous read.
//!
//! The cut-off is the snapshot's `started_at` (when its scan began: every row it read was read
//! after) minus `live.cutoff_margin_secs` (clocks of the batch and ingest hosts apart). Each poll
//! reads the buckets from its previous poll's start minus `live.poll_overlap_ms` on: an update
//! logged with a stamp up to that much before it became readable (a slow write, ingest hosts'
//! clocks apart) is still read. Reading a change twice changes nothing (last write wins).
//!
//! The states answer UNAVAILABLE while loading, when loading failed (no change log, changes since
//! the snapshot already expired) and when the log has not been read for
//! `live.max_staleness_ms` (Cassandra down).

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use stockflight_proto::cassandra::{AVAILABILITY_TABLE, State};
use stockflight_proto::changes::{self, CHANGE_SHARDS, CHANGES_TABLE};
use tokio::sync::OnceCell;

use super::connection::Connection;
use super::merge::{Change, Merged, Pair};
use super::reference::Reference;
use super::snapshot_rows::SnapshotRows;
use crate::error::Error;

/// Partition reads in flight while reading the log.
const READ_CONCURRENCY: usize = 32;
/// Point reads of undecided pairs in flight.
const SETTLE_CONCURRENCY: usize = 16;

/// How the log is followed.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Time between two reads of the log.
    pub poll: Duration,
    /// How far each read reaches back before the previous one started.
    pub overlap: Duration,
    /// How far before a snapshot's start its changes are read.
    pub cutoff_margin: Duration,
    /// The longest the log may go unread before the current tables answer UNAVAILABLE.
    pub max_staleness: Duration,
}

/// One logged change.
#[derive(Debug, Clone)]
pub struct Logged {
    /// When ingest wrote it (its clock), microseconds.
    pub applied_us: i64,
    /// The item.
    pub item_id: String,
    /// The node.
    pub node_id: String,
    /// The update and its rank.
    pub change: Change,
}

#[derive(Debug, Clone)]
enum Status {
    Loading,
    Ready,
    Failed(String),
}

/// One snapshot's state as of now: its rows, its reference data and the changes since.
#[derive(Debug)]
pub struct CurrentState {
    run_id: String,
    cutoff_us: i64,
    snapshot: SnapshotRows,
    reference: Arc<Reference>,
    merged: RwLock<Merged>,
    status: Mutex<Status>,
}

impl CurrentState {
    /// The state of snapshot `run_id` whose changes start at `cutoff_us`.
    pub fn new(run_id: String, cutoff_us: i64, snapshot: SnapshotRows, reference: Arc<Reference>) -> Self {
        Self {
            run_id,
            cutoff_us,
            snapshot,
            reference,
            merged: RwLock::new(Merged::default()),
            status: Mutex::new(Status::Loading),
        }
    }

    /// The merged changes, for reading.
    pub fn merged(&self) -> std::sync::RwLockReadGuard<'_, Merged> {
        self.merged.read().expect("merged lock")
    }

    /// The reference data rows are joined with.
    pub fn reference(&self) -> &Arc<Reference> {
        &self.reference
    }

    /// The snapshot's rows, indexed by pair.
    pub fn snapshot(&self) -> &SnapshotRows {
        &self.snapshot
    }

    fn apply(&self, logged: &[Logged]) -> Vec<Pair> {
        let mut merged = self.merged.write().expect("merged lock");
        for l in logged.iter().filter(|l| l.applied_us >= self.cutoff_us) {
            merged.apply(
                &l.item_id,
                &l.node_id,
                l.change.clone(),
                &self.snapshot,
                &self.reference,
            );
        }
        metrics::gauge!("stockflight_server_live_changed_pairs").set(merged.winners().len() as f64);
        merged.undecided()
    }

    /// Merges one change as if read from the log (tests without Cassandra).
    #[cfg(test)]
    pub(crate) fn merge_for_tests(&self, item_id: &str, node_id: &str, change: Change) {
        let mut merged = self.merged.write().expect("merged lock");
        merged.apply(item_id, node_id, change, &self.snapshot, &self.reference);
        for pair in merged.undecided() {
            merged.settle(&pair, None, &self.snapshot, &self.reference);
        }
    }

    fn settle(&self, pair: &Pair, truth: Option<Change>) {
        self.merged
            .write()
            .expect("merged lock")
            .settle(pair, truth, &self.snapshot, &self.reference);
    }

    fn set_status(&self, status: Status) {
        *self.status.lock().expect("status lock") = status;
    }
}

/// Prepared statements of the open session.
#[derive(Debug)]
struct Statements {
    since: PreparedStatement,
    row: PreparedStatement,
    ttl: PreparedStatement,
}

/// The poller and the states it feeds.
#[derive(Debug)]
pub struct Follower {
    connection: Arc<Connection>,
    options: FollowOptions,
    states: Mutex<Vec<Weak<CurrentState>>>,
    /// When the log was last read completely, and the last failure since.
    last_read: Mutex<(Option<Instant>, Option<String>)>,
    statements: OnceCell<Statements>,
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Follower {
    /// A follower reading through `connection`; [`Follower::spawn_poll`] starts it.
    pub fn new(connection: Arc<Connection>, options: FollowOptions) -> Self {
        Self {
            connection,
            options,
            states: Mutex::new(Vec::new()),
            last_read: Mutex::new((None, None)),
            statements: OnceCell::new(),
        }
    }

    /// Treats `state` as loaded and the log as just read (tests without Cassandra).
    #[cfg(test)]
    pub(crate) fn ready_for_tests(&self, state: &CurrentState) {
        state.set_status(Status::Ready);
        *self.last_read.lock().expect("read lock") = (Some(Instant::now()), None);
    }

    /// The cut-off of a snapshot whose scan started at `started_at_us`.
    pub fn cutoff_us(&self, started_at_us: i64) -> i64 {
        started_at_us.saturating_sub(self.options.cutoff_margin.as_micros() as i64)
    }

    /// Whether `state` can answer now: loaded, and the log read within `live.max_staleness_ms`.
    pub fn check(&self, state: &CurrentState) -> Result<(), Error> {
        match state.status.lock().expect("status lock").clone() {
            Status::Loading => {
                return Err(Error::LiveUnavailable(format!(
                    "the changes since snapshot {} are still being read from the change log",
                    state.run_id
                )));
            }
            Status::Failed(reason) => return Err(Error::LiveUnavailable(reason)),
            Status::Ready => {}
        }
        let (read_at, failure) = self.last_read.lock().expect("read lock").clone();
        match read_at {
            Some(at) if at.elapsed() <= self.options.max_staleness => Ok(()),
            _ => Err(Error::LiveUnavailable(format!(
                "the change log has not been read for longer than {:?} (live.max_staleness_ms){}",
                self.options.max_staleness,
                failure.map(|f| format!(": {f}")).unwrap_or_default()
            ))),
        }
    }

    /// Starts following for `state`: the poller feeds it from now on, and a task loads the
    /// changes since its cut-off (retried until it succeeds or the snapshot is gone). Returns
    /// once loaded or after `wait`, whichever is first.
    pub async fn attach(self: &Arc<Self>, state: &Arc<CurrentState>, wait: Duration) {
        self.states.lock().expect("states lock").push(Arc::downgrade(state));
        let (this, weak) = (Arc::clone(self), Arc::downgrade(state));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(500);
            let mut done = Some(done_tx);
            loop {
                let Some(state) = weak.upgrade() else { return };
                match this.load(&state).await {
                    Ok(count) => {
                        state.set_status(Status::Ready);
                        tracing::info!(run_id = %state.run_id, changes = count, changed_pairs = state.merged().winners().len(), "live: changes since the snapshot loaded");
                        if let Some(done) = done.take() {
                            let _ = done.send(());
                        }
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(run_id = %state.run_id, error = %e, retry_in = ?delay, "live: cannot load the changes since the snapshot");
                        state.set_status(Status::Failed(e));
                    }
                }
                drop(state);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        });
        let _ = tokio::time::timeout(wait, done_rx).await;
    }

    async fn statements(&self, session: &Session) -> Result<&Statements, String> {
        let keyspace = self.connection.keyspace();
        self.statements
            .get_or_try_init(|| async {
                let prepare = |cql: String| async move {
                    session.prepare(cql.clone()).await.map_err(|e| {
                        format!("prepare `{cql}`: {e} (is ingest.change_log on? it creates {keyspace}.{CHANGES_TABLE})")
                    })
                };
                let mut row = prepare(format!(
                    "SELECT state, WRITETIME(state) FROM {keyspace}.{AVAILABILITY_TABLE} WHERE item_id = ? AND node_id = ?"
                ))
                .await?;
                row.set_is_idempotent(true);
                let mut since = prepare(changes::select_since(keyspace)).await?;
                since.set_is_idempotent(true);
                since.set_page_size(5000);
                Ok(Statements {
                    since,
                    row,
                    ttl: prepare(changes::SELECT_TTL.to_string()).await?,
                })
            })
            .await
    }

    /// Loads the changes since `state`'s cut-off; returns how many were read.
    async fn load(&self, state: &CurrentState) -> Result<usize, String> {
        let session = self.connection.session().map_err(|e| e.to_string())?;
        let statements = self.statements(&session).await?;
        let keyspace = self.connection.keyspace().to_lowercase();
        let ttl: Option<(i32,)> = session
            .execute_unpaged(&statements.ttl, (&keyspace, CHANGES_TABLE))
            .await
            .map_err(|e| format!("read the change log's lifetime: {e}"))?
            .into_rows_result()
            .map_err(|e| e.to_string())?
            .maybe_first_row()
            .map_err(|e| e.to_string())?;
        let Some((ttl,)) = ttl else {
            return Err(format!(
                "no change log {keyspace}.{CHANGES_TABLE}: turn ingest.change_log on (ingest creates it)"
            ));
        };
        let started = now_us();
        let kept_since = started - i64::from(ttl) * 1_000_000;
        if ttl > 0 && state.cutoff_us < kept_since {
            return Err(format!(
                "snapshot {} started before the oldest change the log keeps ({ttl} s, ingest.change_log_ttl): \
                 the changes since it are gone; availability_current serves again once a newer snapshot is published",
                state.run_id
            ));
        }
        let logged = self
            .read(&session, statements, state.cutoff_us - 1, started + self.overlap_us())
            .await?;
        let undecided = state.apply(&logged);
        self.settle(&session, statements, &[state], undecided).await?;
        self.mark_read(None);
        Ok(logged.len())
    }

    fn overlap_us(&self) -> i64 {
        self.options.overlap.as_micros() as i64
    }

    /// The logged changes with `applied_us > after`, of the buckets up to `until_us`'s.
    async fn read(
        &self,
        session: &Session,
        statements: &Statements,
        after: i64,
        until_us: i64,
    ) -> Result<Vec<Logged>, String> {
        let partitions: Vec<(i64, i8)> = (changes::bucket_of(after)..=changes::bucket_of(until_us))
            .flat_map(|b| (0..CHANGE_SHARDS).map(move |s| (b, s)))
            .collect();
        let parts: Vec<Vec<Logged>> = futures::stream::iter(partitions)
            .map(|(bucket, shard)| async move {
                let pager = session
                    .execute_iter(statements.since.clone(), (bucket, shard, after))
                    .await
                    .map_err(|e| format!("read the change log: {e}"))?;
                pager
                    .rows_stream::<(i64, String, String, Option<State>, Option<i64>)>()
                    .map_err(|e| format!("change log rows: {e}"))?
                    .try_filter_map(|(applied_us, item_id, node_id, state, write)| async move {
                        Ok(state.zip(write).map(|(state, write_us)| Logged {
                            applied_us,
                            item_id,
                            node_id,
                            change: Change { write_us, state },
                        }))
                    })
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(|e| format!("read the change log: {e}"))
            })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// Reads Cassandra's row of each undecided pair and settles it in every state that has it.
    async fn settle(
        &self,
        session: &Session,
        statements: &Statements,
        states: &[&CurrentState],
        undecided: Vec<Pair>,
    ) -> Result<(), String> {
        if undecided.is_empty() {
            return Ok(());
        }
        let truths: Vec<(Pair, Option<Change>)> = futures::stream::iter(undecided)
            .map(|pair| async move {
                let row: Option<(Option<State>, Option<i64>)> = session
                    .execute_unpaged(&statements.row, (&pair.0, &pair.1))
                    .await
                    .map_err(|e| format!("read ({}, {}): {e}", pair.0, pair.1))?
                    .into_rows_result()
                    .map_err(|e| e.to_string())?
                    .maybe_first_row()
                    .map_err(|e| e.to_string())?;
                let truth = row
                    .and_then(|(state, write)| state.zip(write))
                    .map(|(state, write_us)| Change { write_us, state });
                Ok::<_, String>((pair, truth))
            })
            .buffer_unordered(SETTLE_CONCURRENCY)
            .try_collect()
            .await?;
        for (pair, truth) in &truths {
            for state in states {
                state.settle(pair, truth.clone());
            }
        }
        Ok(())
    }

    fn mark_read(&self, failure: Option<String>) {
        let mut last = self.last_read.lock().expect("read lock");
        match failure {
            None => *last = (Some(Instant::now()), None),
            Some(f) => last.1 = Some(f),
        }
    }

    /// Reads the log every `live.poll_ms` and feeds every live state, until aborted.
    pub fn spawn_poll(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.options.poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut since: Option<i64> = None;
            let mut warned = Instant::now() - Duration::from_secs(60);
            loop {
                tick.tick().await;
                let states: Vec<Arc<CurrentState>> = {
                    let mut states = this.states.lock().expect("states lock");
                    states.retain(|w| w.strong_count() > 0);
                    states.iter().filter_map(Weak::upgrade).collect()
                };
                if states.is_empty() {
                    // Nothing to feed: a state attached later loads up to its own start.
                    since = None;
                    continue;
                }
                let started = now_us();
                let after = since.unwrap_or(started) - this.overlap_us();
                match this.poll(&states, after, started).await {
                    Ok(()) => {
                        since = Some(started);
                        this.mark_read(None);
                    }
                    Err(e) => {
                        metrics::counter!("stockflight_server_live_poll_errors_total").increment(1);
                        if warned.elapsed() >= Duration::from_secs(5) {
                            tracing::warn!(error = %e, "live: reading the change log failed; retrying");
                            warned = Instant::now();
                        }
                        this.mark_read(Some(e));
                    }
                }
            }
        })
    }

    async fn poll(&self, states: &[Arc<CurrentState>], after: i64, started: i64) -> Result<(), String> {
        let session = self.connection.session().map_err(|e| e.to_string())?;
        let statements = self.statements(&session).await?;
        let logged = self
            .read(&session, statements, after, started + self.overlap_us())
            .await?;
        let mut undecided = Vec::new();
        for state in states {
            undecided.extend(state.apply(&logged));
        }
        undecided.sort();
        undecided.dedup();
        let refs: Vec<&CurrentState> = states.iter().map(Arc::as_ref).collect();
        self.settle(&session, statements, &refs, undecided).await
    }
}

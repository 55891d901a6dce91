//! Fenced, atomic publication and grace-period retention of snapshots.
//!
//! A run writes every table under `snapshots/<run-id>/`, then `snapshots/<run-id>/_manifest.json`
//! (marks the run complete), then `CURRENT` (publishes it). Readers only follow `CURRENT`, so a
//! run that dies before that last write leaves the previous snapshot current and readable.
//!
//! `CURRENT` is written only while the run provably holds the run lease (see [`Fence`]): the
//! manifest records the lease's fencing token; right before `CURRENT` is written the run refuses
//! if the current snapshot was published under a newer token, confirms the lease with a
//! lightweight transaction, and writes `CURRENT` with a conditional put where the store has one,
//! or under a lock file on a local directory ([`ConditionalPut`]), so a publication that lands
//! between its read and its write fails it (or waits for it).
//!
//! Re-running a run id is idempotent: a completed run is not written again (its publication is
//! finished, fenced the same way, if it died between its manifest and `CURRENT`); an incomplete
//! one is wiped and rewritten. Retention runs only after `CURRENT` moved; it keeps the newest `K`
//! (at least [`MIN_KEEP`]) complete snapshots and every snapshot that was current less than the
//! grace period ago (the chain of [`Publication::supersedes`] from `CURRENT`), so servers and
//! queries still on the previous snapshot never lose its files. Every snapshot is self-contained
//! (the trend table is carried forward into each run's own files, see `tables::trend_sql`), so
//! retention deletes whole run directories and no snapshot refers to another's files.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, UpdateVersion};
use stockflight_proto::layout::{
    CURRENT_LOCK, CURRENT_POINTER, Publication, PublishedManifest, SNAPSHOTS_PREFIX, SnapshotManifest,
};

use crate::error::Error;

/// Name of a run's own copy of its manifest; its presence marks the run complete.
pub const RUN_MANIFEST: &str = "_manifest.json";
/// Incomplete run directories younger than this are left alone by retention: another process
/// might still be writing them.
pub const INCOMPLETE_GRACE: TimeDelta = TimeDelta::hours(1);
/// Complete snapshots retention always keeps, whatever `snapshot.retention` says: the current
/// one and the one before it.
pub const MIN_KEEP: usize = 2;

/// Proof that this run still holds the run lease, asked for right before `CURRENT` is written.
/// [`crate::lease::Lease`] is the real one; unit tests use fakes.
pub trait Fence: Sync {
    /// The fencing token of the lease this run holds; later acquisitions have larger ones.
    fn token(&self) -> u64;
    /// Confirms that this run still holds the lease (and extends it); [`Error::LeaseLost`]
    /// when it does not, another error when that cannot be established.
    fn confirm(&self) -> impl Future<Output = Result<(), Error>> + Send;
    /// How long a confirmation stays good: `CURRENT` is not written later than half of it
    /// after the confirmation.
    fn validity(&self) -> Duration;
}

/// How `CURRENT` is written so that a publication racing this one cannot be overwritten
/// unnoticed; what each store supports is found by test (see `batch/README.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionalPut {
    /// `PutMode::Create` for the first `CURRENT`, `PutMode::Update` with the e-tag read for the
    /// next ones (AWS S3, MinIO; object_store's in-memory store).
    Etag,
    /// A local directory (object_store's `LocalFileSystem` has `PutMode::Create` but no
    /// `PutMode::Update`): every publisher holds an exclusive lock on `CURRENT.lock` in the root
    /// from its read of `CURRENT` to its write, so the token check and the write are one
    /// compare-and-set among publishers; `PutMode::Create` for the first `CURRENT`.
    LocalLock,
    /// Plain overwrites, fenced by the lease check alone (OpenStack Swift's `s3api`, which
    /// answers 501 to every conditional PUT).
    None,
}

/// How long a publisher waits for [`CURRENT_LOCK`] before it gives up (another publisher
/// holds it only between its read and its write of `CURRENT`, unless it is stalled).
pub const CURRENT_LOCK_WAIT: Duration = Duration::from_secs(60);

/// What `prepare` found for a run id.
#[derive(Debug)]
pub enum Prepared {
    /// The run id was published before; nothing to write.
    AlreadyPublished(SnapshotManifest),
    /// The run's prefix is empty and ready for its tables.
    Fresh,
}

/// Publishes snapshots into one store.
#[derive(Debug, Clone)]
pub struct Publisher {
    store: Arc<dyn ObjectStore>,
    /// The root directory when the store is local: empty directories are removed after deletes.
    local_root: Option<PathBuf>,
    conditional: ConditionalPut,
    lock_wait: Duration,
}

/// Prefix of a run, `snapshots/<run-id>`.
pub fn run_prefix(run_id: &str) -> String {
    format!("{SNAPSHOTS_PREFIX}/{run_id}")
}

fn run_manifest(run_id: &str) -> String {
    format!("{}/{RUN_MANIFEST}", run_prefix(run_id))
}

impl Publisher {
    /// A publisher over `store`; `local_root` is its directory when it is a local one (needed
    /// for [`ConditionalPut::LocalLock`]); `conditional` how `CURRENT` is written.
    pub fn new(store: Arc<dyn ObjectStore>, local_root: Option<PathBuf>, conditional: ConditionalPut) -> Self {
        Self {
            store,
            local_root,
            conditional,
            lock_wait: CURRENT_LOCK_WAIT,
        }
    }

    /// The same publisher, waiting at most `wait` for [`CURRENT_LOCK`].
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Takes [`CURRENT_LOCK`] for [`ConditionalPut::LocalLock`] (held until the file is
    /// dropped; the OS drops it with a process that dies); `None` for the other modes.
    async fn lock_current(&self) -> Result<Option<std::fs::File>, Error> {
        if self.conditional != ConditionalPut::LocalLock {
            return Ok(None);
        }
        let Some(root) = &self.local_root else {
            return Err(Error::Storage(format!(
                "{CURRENT_LOCK}: a local-directory lock needs the directory (not a local store?)"
            )));
        };
        let path = root.join(CURRENT_LOCK);
        let fail = |e: &dyn std::fmt::Display| Error::Storage(format!("lock {}: {e}", path.display()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| fail(&e))?;
        let deadline = Instant::now() + self.lock_wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(file)),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(fail(&format!(
                        "held by another publisher for {} s; nothing published",
                        self.lock_wait.as_secs()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(fail(&e)),
            }
        }
    }

    /// The published manifest (`CURRENT`), if any.
    pub async fn current(&self) -> Result<Option<PublishedManifest>, Error> {
        Ok(self.read_manifest(CURRENT_POINTER).await?.map(|(m, _)| m))
    }

    /// When the current snapshot's data was taken (its run's start), if any.
    pub async fn last_success(&self) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(self.current().await?.and_then(|m| parse_time(&m.manifest.started_at)))
    }

    /// A manifest and the version read, for a conditional put over it.
    async fn read_manifest(&self, key: &str) -> Result<Option<(PublishedManifest, UpdateVersion)>, Error> {
        match self.store.get(&Path::from(key)).await {
            Ok(got) => {
                let version = UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                };
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| Error::storage(format!("read {key}"), e))?;
                PublishedManifest::from_json(&bytes)
                    .map(|m| Some((m, version)))
                    .map_err(|e| Error::Storage(format!("{key}: {e}")))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(format!("read {key}"), e)),
        }
    }

    /// Readies `run_id`: a published run is left as it is (its publication completed, under
    /// `fence`, if it died before `CURRENT` and nothing newer is current), an incomplete one is
    /// wiped.
    pub async fn prepare(&self, run_id: &str, fence: &impl Fence) -> Result<Prepared, Error> {
        let prefix = run_prefix(run_id);
        if let Some((done, _)) = self.read_manifest(&run_manifest(run_id)).await? {
            let current = self.current().await?;
            let newer = current.as_ref().is_none_or(|c| {
                c.manifest.run_id != done.manifest.run_id
                    && parse_time(&c.manifest.started_at) < parse_time(&done.manifest.started_at)
            });
            if newer {
                tracing::info!(run_id, "finishing the publication of a completed run");
                self.commit(done.manifest.clone(), fence).await?;
            }
            return Ok(Prepared::AlreadyPublished(done.manifest));
        }
        let removed = self.delete_prefix(&prefix).await?;
        if removed > 0 {
            tracing::info!(run_id, removed, "removed the files of an earlier, unfinished attempt");
        }
        Ok(Prepared::Fresh)
    }

    /// Publishes `manifest` under `fence`: the run's own copy first, then `CURRENT`, the single
    /// object whose write makes the snapshot visible. Refuses with [`Error::LeaseLost`], leaving
    /// `CURRENT` as it was, when a newer lease holder published, when the lease is no longer
    /// held, or when `CURRENT` changed between its read and its write.
    pub async fn commit(&self, manifest: SnapshotManifest, fence: &impl Fence) -> Result<PublishedManifest, Error> {
        let run_id = manifest.run_id.clone();
        // From the read of CURRENT to its write (a no-op but for a local directory).
        let _lock = self.lock_current().await?;
        let current = self.read_manifest(CURRENT_POINTER).await?;
        if let Some((c, _)) = &current {
            refuse_newer(c, fence.token())?;
        }
        let published = PublishedManifest {
            manifest: SnapshotManifest {
                published_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
                ..manifest
            },
            publication: Publication {
                lease_epoch: fence.token(),
                supersedes: current
                    .as_ref()
                    .map(|(c, _)| c.manifest.run_id.clone())
                    .filter(|id| *id != run_id),
            },
        };
        let json = published.to_json();
        let own = run_manifest(&run_id);
        self.put(&own, json.clone(), PutMode::Overwrite)
            .await
            .map_err(|e| Error::storage(format!("write {own}"), e))?;
        match self.put_current(json, current.map(|(_, v)| v), fence).await {
            Ok(()) => {
                tracing::info!(run_id, lease_epoch = fence.token(), "CURRENT written");
                Ok(published)
            }
            Err(err @ Error::LeaseLost(_)) => {
                // Superseded, and CURRENT certainly not written: the run is incomplete again, so
                // no one finishes its publication later and retention treats it as the leftover
                // it is. (After any other error CURRENT may or may not have been written; the
                // manifest stays, and a re-run of the id finishes the publication, fenced.)
                if let Err(e) = self.store.delete(&Path::from(own)).await {
                    tracing::warn!(run_id, error = %e, "could not withdraw the manifest of an unpublished run");
                }
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    /// The fenced write of `CURRENT`: confirm the lease, then put, conditionally where the store
    /// can, within half the confirmation's validity.
    async fn put_current(&self, json: Vec<u8>, read: Option<UpdateVersion>, fence: &impl Fence) -> Result<(), Error> {
        let confirmed = Instant::now();
        fence.confirm().await?;
        let mode = match (self.conditional, read) {
            (ConditionalPut::Etag, Some(version)) => PutMode::Update(version),
            (ConditionalPut::Etag | ConditionalPut::LocalLock, None) => PutMode::Create,
            // Under the lock: no other publisher writes between the read and this write.
            (ConditionalPut::LocalLock, Some(_)) => PutMode::Overwrite,
            (ConditionalPut::None, _) => PutMode::Overwrite,
        };
        // A stall (GC pause, SIGSTOP, a slow confirmation) after the check could outlive the lease.
        let stalled = confirmed.elapsed();
        if stalled > fence.validity() / 2 {
            return Err(Error::LeaseLost(format!(
                "{:.1} s passed between confirming the lease and writing CURRENT",
                stalled.as_secs_f64()
            )));
        }
        match self.put(CURRENT_POINTER, json, mode).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                let now = self.current().await?;
                Err(Error::LeaseLost(format!(
                    "CURRENT changed while publishing: it is now run {}",
                    now.map_or("(none)".into(), |c| format!(
                        "{} (lease token {})",
                        c.manifest.run_id, c.publication.lease_epoch
                    ))
                )))
            }
            Err(e) => Err(Error::storage(format!("write {CURRENT_POINTER}"), e)),
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>, mode: PutMode) -> Result<(), object_store::Error> {
        self.store
            .put_opts(&Path::from(key), Bytes::from(body).into(), mode.into())
            .await
            .map(|_| ())
    }

    /// Deletes complete snapshots beyond the newest `keep` (at least [`MIN_KEEP`]) that were
    /// not current within the last `grace`, and stale incomplete run directories. Returns the
    /// deleted run ids.
    pub async fn retain(&self, keep: usize, grace: Duration, now: DateTime<Utc>) -> Result<Vec<String>, Error> {
        let current = self.current().await?;
        let protected = self.recently_current(current.as_ref(), grace, now).await?;
        let listing = self
            .store
            .list_with_delimiter(Some(&Path::from(SNAPSHOTS_PREFIX)))
            .await
            .map_err(|e| Error::storage(format!("list {SNAPSHOTS_PREFIX}/"), e))?;
        let mut complete = Vec::new();
        let mut doomed = Vec::new();
        for dir in listing.common_prefixes {
            let Some(run_id) = dir.filename().map(str::to_string) else {
                continue;
            };
            if current.as_ref().is_some_and(|c| c.manifest.run_id == run_id) {
                continue;
            }
            match self.read_manifest(&run_manifest(&run_id)).await? {
                Some((m, _)) => complete.push((parse_time(&m.manifest.started_at), run_id)),
                None => {
                    if self
                        .newest_write(&dir)
                        .await?
                        .is_none_or(|t| now - t > INCOMPLETE_GRACE)
                    {
                        doomed.push(run_id);
                    }
                }
            }
        }
        // Newest first; the current snapshot counts as one of the `keep`.
        complete.sort_by(|a, b| b.cmp(a));
        let keep_others = keep.max(MIN_KEEP).saturating_sub(usize::from(current.is_some()));
        for (_, run_id) in complete.into_iter().skip(keep_others) {
            if protected.contains(&run_id) {
                tracing::info!(
                    run_id,
                    "retention keeps a snapshot that was current within the grace period"
                );
            } else {
                doomed.push(run_id);
            }
        }
        for run_id in &doomed {
            let removed = self.delete_prefix(&run_prefix(run_id)).await?;
            tracing::info!(run_id, removed, "retention deleted a snapshot");
        }
        Ok(doomed)
    }

    /// Run ids that were `CURRENT` within `grace` before `now`: the chain of
    /// [`Publication::supersedes`] back from `current`, as long as the snapshot that replaced
    /// one was published less than `grace` ago (or when its time is unreadable). Publish times
    /// come from the manifests, never from storage listings.
    async fn recently_current(
        &self,
        current: Option<&PublishedManifest>,
        grace: Duration,
        now: DateTime<Utc>,
    ) -> Result<BTreeSet<String>, Error> {
        let grace = TimeDelta::from_std(grace).unwrap_or(TimeDelta::MAX);
        let mut protected = BTreeSet::new();
        let mut next = current.cloned();
        while let Some(m) = next.take() {
            protected.insert(m.manifest.run_id.clone());
            let Some(previous) = m.publication.supersedes.clone() else {
                break;
            };
            let replaced_at = parse_time(&m.manifest.published_at);
            if replaced_at.is_some_and(|t| now - t > grace) || protected.contains(&previous) {
                break;
            }
            protected.insert(previous.clone());
            next = self.read_manifest(&run_manifest(&previous)).await?.map(|(m, _)| m);
        }
        Ok(protected)
    }

    /// The newest modification time under `dir`, if it holds anything.
    async fn newest_write(&self, dir: &Path) -> Result<Option<DateTime<Utc>>, Error> {
        self.store
            .list(Some(dir))
            .map_ok(|m| m.last_modified)
            .try_fold(
                None,
                |acc: Option<DateTime<Utc>>, t| async move { Ok(acc.max(Some(t))) },
            )
            .await
            .map_err(|e| Error::storage(format!("list {dir}/"), e))
    }

    /// Deletes every object under `prefix`; returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<usize, Error> {
        let objects: Vec<Path> = self
            .store
            .list(Some(&Path::from(prefix)))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|e| Error::storage(format!("list {prefix}/"), e))?;
        let count = objects.len();
        // One DELETE per object: Swift's S3 bulk delete wants a Content-MD5 header that not
        // every client sends.
        futures::stream::iter(objects)
            .map(|path| async move {
                match self.store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(Error::storage(format!("delete {path}"), e)),
                }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<()>>()
            .await?;
        if let Some(root) = &self.local_root {
            let dir = root.join(prefix);
            if dir.is_dir() {
                std::fs::remove_dir_all(&dir).map_err(|e| Error::storage(format!("remove {}", dir.display()), e))?;
            }
        }
        Ok(count)
    }
}

/// Refuses to replace `current` when a later lease holder (a larger token) published it.
fn refuse_newer(current: &PublishedManifest, token: u64) -> Result<(), Error> {
    let theirs = current.publication.lease_epoch;
    if theirs > token {
        return Err(Error::LeaseLost(format!(
            "CURRENT is run {}, published under lease token {theirs}, newer than this run's {token}",
            current.manifest.run_id
        )));
    }
    Ok(())
}

/// Parses an RFC 3339 time from a manifest; `None` sorts an unreadable one oldest.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};

    use object_store::local::LocalFileSystem;
    use object_store::memory::InMemory;
    use stockflight_proto::layout::{MANIFEST_FORMAT_VERSION, TableManifest};

    use super::*;

    /// A lease held (or not) with a given token.
    struct FakeFence {
        token: u64,
        held: AtomicBool,
    }

    fn holding(token: u64) -> FakeFence {
        FakeFence {
            token,
            held: AtomicBool::new(true),
        }
    }

    impl Fence for FakeFence {
        fn token(&self) -> u64 {
            self.token
        }
        async fn confirm(&self) -> Result<(), Error> {
            if self.held.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(Error::LeaseLost("now held by someone else".into()))
            }
        }
        fn validity(&self) -> Duration {
            Duration::from_secs(60)
        }
    }

    /// A lease that is confirmed while another run publishes `CURRENT` behind its back: the
    /// race a conditional put closes.
    struct Interloper {
        token: u64,
        store: Arc<dyn ObjectStore>,
        current: Vec<u8>,
    }

    impl Fence for Interloper {
        fn token(&self) -> u64 {
            self.token
        }
        async fn confirm(&self) -> Result<(), Error> {
            self.store
                .put(&Path::from(CURRENT_POINTER), Bytes::from(self.current.clone()).into())
                .await
                .unwrap();
            Ok(())
        }
        fn validity(&self) -> Duration {
            Duration::from_secs(60)
        }
    }

    fn manifest(run_id: &str, started_at: &str) -> SnapshotManifest {
        SnapshotManifest {
            format_version: MANIFEST_FORMAT_VERSION,
            run_id: run_id.into(),
            started_at: started_at.into(),
            published_at: started_at.into(),
            tables: BTreeMap::from([(
                "t".to_string(),
                TableManifest {
                    files: vec![format!("snapshots/{run_id}/t/part-0.parquet")],
                    partition_columns: vec![],
                    rows: 1,
                    bytes: 4,
                },
            )]),
        }
    }

    /// A publisher in memory, or in a temporary directory for [`ConditionalPut::LocalLock`]
    /// (removed when the process ends; `TempDir` is leaked on purpose so the store outlives it).
    fn publisher(conditional: ConditionalPut) -> (Publisher, Arc<dyn ObjectStore>) {
        if conditional == ConditionalPut::LocalLock {
            let dir = tempfile::tempdir().unwrap().keep();
            return local_publisher(&dir);
        }
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        (Publisher::new(store.clone(), None, conditional), store)
    }

    fn local_publisher(dir: &std::path::Path) -> (Publisher, Arc<dyn ObjectStore>) {
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap());
        let p = Publisher::new(store.clone(), Some(dir.to_path_buf()), ConditionalPut::LocalLock);
        (p, store)
    }

    async fn write_run(p: &Publisher, store: &Arc<dyn ObjectStore>, run_id: &str, started_at: &str, token: u64) {
        write_files(store, run_id).await;
        p.commit(manifest(run_id, started_at), &holding(token)).await.unwrap();
    }

    async fn write_files(store: &Arc<dyn ObjectStore>, run_id: &str) {
        store
            .put(
                &Path::from(format!("snapshots/{run_id}/t/part-0.parquet")),
                Bytes::from_static(b"data").into(),
            )
            .await
            .unwrap();
    }

    async fn runs(store: &Arc<dyn ObjectStore>) -> Vec<String> {
        let listing = store.list_with_delimiter(Some(&Path::from("snapshots"))).await.unwrap();
        let mut ids: Vec<String> = listing
            .common_prefixes
            .iter()
            .map(|p| p.filename().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    async fn current_id(p: &Publisher) -> String {
        p.current().await.unwrap().unwrap().manifest.run_id
    }

    const GRACE: Duration = Duration::from_secs(900);

    #[tokio::test]
    async fn retention_keeps_what_was_current_within_the_grace_then_the_newest_k() {
        let (p, store) = publisher(ConditionalPut::Etag);
        for h in 0..5 {
            write_run(&p, &store, &format!("r{h}"), &format!("2026-11-25T0{h}:00:00Z"), h + 1).await;
        }
        // Every snapshot was replaced moments ago: servers may still be on any of them.
        assert!(p.retain(2, GRACE, Utc::now()).await.unwrap().is_empty());
        assert_eq!(runs(&store).await, ["r0", "r1", "r2", "r3", "r4"]);
        // Past the grace: the newest K stay.
        let later = Utc::now() + TimeDelta::hours(1);
        let deleted = p.retain(3, GRACE, later).await.unwrap();
        assert_eq!(deleted.len(), 2, "{deleted:?}");
        assert_eq!(runs(&store).await, ["r2", "r3", "r4"]);
        assert_eq!(current_id(&p).await, "r4");
    }

    #[tokio::test]
    async fn retention_always_keeps_two() {
        let (p, store) = publisher(ConditionalPut::Etag);
        for h in 0..4 {
            write_run(&p, &store, &format!("r{h}"), &format!("2026-11-25T0{h}:00:00Z"), h + 1).await;
        }
        let later = Utc::now() + TimeDelta::hours(1);
        p.retain(1, GRACE, later).await.unwrap();
        assert_eq!(runs(&store).await, ["r2", "r3"]);
    }

    /// Rewrites when `run_id` (current now) was published.
    async fn published_ago(p: &Publisher, store: &Arc<dyn ObjectStore>, run_id: &str, ago: TimeDelta) {
        let mut m = p.read_manifest(&run_manifest(run_id)).await.unwrap().unwrap().0;
        m.manifest.published_at = (Utc::now() - ago).to_rfc3339();
        for key in [run_manifest(run_id), CURRENT_POINTER.to_string()] {
            store
                .put(&Path::from(key), Bytes::from(m.to_json()).into())
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn retention_protects_the_chain_of_replaced_snapshots_beyond_k() {
        let (p, store) = publisher(ConditionalPut::Etag);
        write_run(&p, &store, "r0", "2026-11-25T00:00:00Z", 1).await;
        published_ago(&p, &store, "r0", TimeDelta::hours(2)).await;
        write_run(&p, &store, "r1", "2026-11-25T06:00:00Z", 2).await;
        published_ago(&p, &store, "r1", TimeDelta::hours(1)).await;
        write_run(&p, &store, "r2", "2026-11-25T12:00:00Z", 3).await;
        write_run(&p, &store, "r3", "2026-11-25T18:00:00Z", 4).await;
        // K = 2 keeps r3 and r2; r1 was current until r2 replaced it just now, so it stays;
        // r0 was replaced an hour ago, beyond the grace.
        assert_eq!(p.retain(2, GRACE, Utc::now()).await.unwrap(), ["r0"]);
        assert_eq!(runs(&store).await, ["r1", "r2", "r3"]);
    }

    #[tokio::test]
    async fn incomplete_runs_are_wiped_on_rerun_and_kept_while_young() {
        let (p, store) = publisher(ConditionalPut::Etag);
        write_run(&p, &store, "r1", "2026-11-25T00:00:00Z", 1).await;
        store
            .put(
                &Path::from("snapshots/r2/t/half.parquet"),
                Bytes::from_static(b"x").into(),
            )
            .await
            .unwrap();
        // Young and incomplete: retention leaves it (someone may be writing it).
        assert!(p.retain(2, GRACE, Utc::now()).await.unwrap().is_empty());
        assert_eq!(runs(&store).await, ["r1", "r2"]);
        // Re-running r2 wipes the half-written files first.
        assert!(matches!(p.prepare("r2", &holding(2)).await.unwrap(), Prepared::Fresh));
        assert_eq!(runs(&store).await, ["r1"]);
        // Old and incomplete: retention removes it.
        store
            .put(
                &Path::from("snapshots/r3/t/half.parquet"),
                Bytes::from_static(b"x").into(),
            )
            .await
            .unwrap();
        let later = Utc::now() + TimeDelta::hours(2);
        assert_eq!(p.retain(2, GRACE, later).await.unwrap(), ["r3"]);
    }

    #[tokio::test]
    async fn a_published_run_is_not_rewritten_and_its_publication_is_finished() {
        let (p, store) = publisher(ConditionalPut::Etag);
        write_run(&p, &store, "r1", "2026-11-25T00:00:00Z", 1).await;
        // r2 died after its own manifest, before CURRENT.
        let r2 = PublishedManifest {
            manifest: manifest("r2", "2026-11-25T06:00:00Z"),
            publication: Publication::default(),
        };
        store
            .put(&Path::from(run_manifest("r2")), Bytes::from(r2.to_json()).into())
            .await
            .unwrap();
        assert_eq!(current_id(&p).await, "r1");
        assert!(matches!(
            p.prepare("r2", &holding(3)).await.unwrap(),
            Prepared::AlreadyPublished(_)
        ));
        let current = p.current().await.unwrap().unwrap();
        assert_eq!(current.manifest.run_id, "r2");
        // Published under the lease that finished it, replacing r1.
        assert_eq!(current.publication.lease_epoch, 3);
        assert_eq!(current.publication.supersedes.as_deref(), Some("r1"));
        // Re-running the older r1 does not roll CURRENT back.
        assert!(matches!(
            p.prepare("r1", &holding(4)).await.unwrap(),
            Prepared::AlreadyPublished(_)
        ));
        assert_eq!(current_id(&p).await, "r2");
    }

    #[tokio::test]
    async fn the_manifest_records_the_token_and_what_it_replaced() {
        let (p, store) = publisher(ConditionalPut::Etag);
        write_run(&p, &store, "r1", "2026-11-25T00:00:00Z", 1).await;
        write_run(&p, &store, "r2", "2026-11-25T06:00:00Z", 2).await;
        let current = p.current().await.unwrap().unwrap();
        assert_eq!(current.publication.lease_epoch, 2);
        assert_eq!(current.publication.supersedes.as_deref(), Some("r1"));
        let own = p.read_manifest(&run_manifest("r2")).await.unwrap().unwrap().0;
        assert_eq!(own, current, "the run's copy is CURRENT's content");
    }

    #[tokio::test]
    async fn a_stale_holder_cannot_replace_a_newer_holders_snapshot() {
        for conditional in [ConditionalPut::Etag, ConditionalPut::LocalLock, ConditionalPut::None] {
            let (p, store) = publisher(conditional);
            write_run(&p, &store, "new", "2026-11-25T06:00:00Z", 5).await;
            write_files(&store, "stale").await;
            let err = p
                .commit(manifest("stale", "2026-11-25T00:00:00Z"), &holding(4))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::LeaseLost(_)), "{conditional:?}: {err}");
            assert!(err.to_string().contains("lease token 5"), "{err}");
            assert_eq!(current_id(&p).await, "new");
            assert!(p.read_manifest(&run_manifest("stale")).await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn a_lost_lease_leaves_current_untouched_and_the_run_incomplete() {
        for conditional in [ConditionalPut::Etag, ConditionalPut::LocalLock, ConditionalPut::None] {
            let (p, store) = publisher(conditional);
            write_run(&p, &store, "r1", "2026-11-25T00:00:00Z", 1).await;
            write_files(&store, "r2").await;
            let lost = holding(2);
            lost.held.store(false, Ordering::SeqCst);
            let err = p
                .commit(manifest("r2", "2026-11-25T06:00:00Z"), &lost)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::LeaseLost(_)), "{err}");
            assert_eq!(current_id(&p).await, "r1");
            // Withdrawn: nobody finishes this publication, retention treats it as leftovers.
            assert!(p.read_manifest(&run_manifest("r2")).await.unwrap().is_none());
            assert!(matches!(p.prepare("r2", &holding(3)).await.unwrap(), Prepared::Fresh));
        }
    }

    #[tokio::test]
    async fn a_publication_between_read_and_write_fails_the_conditional_put() {
        // Update with the e-tag read (an earlier CURRENT exists).
        let (p, store) = publisher(ConditionalPut::Etag);
        write_run(&p, &store, "r1", "2026-11-25T00:00:00Z", 1).await;
        let other = PublishedManifest {
            manifest: manifest("other", "2026-11-25T07:00:00Z"),
            publication: Publication {
                lease_epoch: 3,
                supersedes: Some("r1".into()),
            },
        };
        let fence = Interloper {
            token: 2,
            store: store.clone(),
            current: other.to_json(),
        };
        let err = p
            .commit(manifest("r2", "2026-11-25T06:00:00Z"), &fence)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("CURRENT changed while publishing"), "{err}");
        assert_eq!(current_id(&p).await, "other");
        // Create for the very first CURRENT, also where the store has no conditional update.
        for conditional in [ConditionalPut::Etag, ConditionalPut::LocalLock] {
            let (p, store) = publisher(conditional);
            let fence = Interloper {
                token: 2,
                store: store.clone(),
                current: other.to_json(),
            };
            let err = p
                .commit(manifest("r2", "2026-11-25T06:00:00Z"), &fence)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::LeaseLost(_)), "{conditional:?}: {err}");
            assert_eq!(current_id(&p).await, "other");
        }
    }

    #[tokio::test]
    async fn an_old_format_current_is_replaced() {
        let (p, store) = publisher(ConditionalPut::Etag);
        let old = manifest("old", "2026-11-25T00:00:00Z");
        store
            .put(&Path::from(CURRENT_POINTER), Bytes::from(old.to_json()).into())
            .await
            .unwrap();
        write_run(&p, &store, "r1", "2026-11-25T06:00:00Z", 1).await;
        let current = p.current().await.unwrap().unwrap();
        assert_eq!(current.manifest.run_id, "r1");
        assert_eq!(current.publication.supersedes.as_deref(), Some("old"));
    }

    /// A second publisher on the same directory, trying to publish while the first is between
    /// its read of `CURRENT` and its write: it must wait for the lock (here: give up).
    struct Contender {
        token: u64,
        dir: std::path::PathBuf,
        outcome: std::sync::Mutex<Option<Result<PublishedManifest, Error>>>,
    }

    impl Fence for Contender {
        fn token(&self) -> u64 {
            self.token
        }
        async fn confirm(&self) -> Result<(), Error> {
            let (other, store) = local_publisher(&self.dir);
            write_files(&store, "contender").await;
            let other = other.with_lock_wait(Duration::from_millis(200));
            let outcome = other
                .commit(manifest("contender", "2026-11-25T09:00:00Z"), &holding(self.token + 1))
                .await;
            *self.outcome.lock().unwrap() = Some(outcome);
            Ok(())
        }
        fn validity(&self) -> Duration {
            Duration::from_secs(60)
        }
    }

    #[tokio::test]
    async fn on_a_local_directory_read_check_and_write_of_current_are_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let (p, store) = local_publisher(dir.path());
        write_run(&p, &store, "r1", "2026-11-25T00:00:00Z", 1).await;
        write_files(&store, "r2").await;
        let fence = Contender {
            token: 2,
            dir: dir.path().to_path_buf(),
            outcome: Default::default(),
        };
        p.commit(manifest("r2", "2026-11-25T06:00:00Z"), &fence).await.unwrap();
        let outcome = fence.outcome.lock().unwrap().take().expect("the contender tried");
        let err = outcome.expect_err("the contender cannot publish inside r2's read-check-write");
        assert!(err.to_string().contains("held by another publisher"), "{err}");
        assert_eq!(current_id(&p).await, "r2");
        // Once r2 is published the lock is free again: the next holder publishes over it.
        write_run(&p, &store, "r3", "2026-11-25T12:00:00Z", 3).await;
        assert_eq!(current_id(&p).await, "r3");
        assert!(dir.path().join(CURRENT_LOCK).is_file());
    }
}

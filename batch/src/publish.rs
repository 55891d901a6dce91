//! Atomic publication and retention of snapshots.
//!
//! A run writes every table under `snapshots/<run-id>/`, then `snapshots/<run-id>/_manifest.json`
//! (marks the run complete), then `CURRENT` (publishes it). Readers only follow `CURRENT`, so a
//! run that dies before that last write leaves the previous snapshot current and readable.
//!
//! Re-running a run id is idempotent: a completed run is not written again (its publication is
//! finished if it died between its manifest and `CURRENT`); an incomplete one is wiped and
//! rewritten. Retention runs only after `CURRENT` moved, keeps the newest `K` complete snapshots
//! and never deletes the current one. Every snapshot is self-contained (the trend table is
//! carried forward into each run's own files, see `tables::trend_sql`), so retention deletes
//! whole run directories and no snapshot refers to another's files.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use stockflight_proto::layout::{CURRENT_POINTER, SNAPSHOTS_PREFIX, SnapshotManifest};

use crate::error::Error;

/// Name of a run's own copy of its manifest; its presence marks the run complete.
pub const RUN_MANIFEST: &str = "_manifest.json";
/// Incomplete run directories younger than this are left alone by retention: another process
/// might still be writing them.
pub const INCOMPLETE_GRACE: TimeDelta = TimeDelta::hours(1);

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
}

/// Prefix of a run, `snapshots/<run-id>`.
pub fn run_prefix(run_id: &str) -> String {
    format!("{SNAPSHOTS_PREFIX}/{run_id}")
}

impl Publisher {
    /// A publisher over `store`; `local_root` is its directory when it is a local one.
    pub fn new(store: Arc<dyn ObjectStore>, local_root: Option<PathBuf>) -> Self {
        Self { store, local_root }
    }

    /// The published manifest (`CURRENT`), if any.
    pub async fn current(&self) -> Result<Option<SnapshotManifest>, Error> {
        self.read_manifest(CURRENT_POINTER).await
    }

    /// When the current snapshot's data was taken (its run's start), if any.
    pub async fn last_success(&self) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(self.current().await?.and_then(|m| parse_time(&m.started_at)))
    }

    async fn read_manifest(&self, key: &str) -> Result<Option<SnapshotManifest>, Error> {
        match self.store.get(&Path::from(key)).await {
            Ok(got) => {
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| Error::storage(format!("read {key}"), e))?;
                SnapshotManifest::from_json(&bytes)
                    .map(Some)
                    .map_err(|e| Error::Storage(format!("{key}: {e}")))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(format!("read {key}"), e)),
        }
    }

    /// Readies `run_id`: a published run is left as it is (its publication completed if it
    /// died before `CURRENT`), an incomplete one is wiped.
    pub async fn prepare(&self, run_id: &str) -> Result<Prepared, Error> {
        let prefix = run_prefix(run_id);
        if let Some(done) = self.read_manifest(&format!("{prefix}/{RUN_MANIFEST}")).await? {
            let current = self.current().await?;
            let newer = current
                .as_ref()
                .is_none_or(|c| c.run_id != done.run_id && parse_time(&c.started_at) < parse_time(&done.started_at));
            if newer {
                tracing::info!(run_id, "finishing the publication of a completed run");
                self.put(CURRENT_POINTER, done.to_json()).await?;
            }
            return Ok(Prepared::AlreadyPublished(done));
        }
        let removed = self.delete_prefix(&prefix).await?;
        if removed > 0 {
            tracing::info!(run_id, removed, "removed the files of an earlier, unfinished attempt");
        }
        Ok(Prepared::Fresh)
    }

    /// Publishes `manifest`: the run's own copy first, then `CURRENT`, the single object whose
    /// write makes the snapshot visible.
    pub async fn commit(&self, manifest: &SnapshotManifest) -> Result<(), Error> {
        let json = manifest.to_json();
        self.put(
            &format!("{}/{RUN_MANIFEST}", run_prefix(&manifest.run_id)),
            json.clone(),
        )
        .await?;
        self.put(CURRENT_POINTER, json).await
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), Error> {
        self.store
            .put(&Path::from(key), Bytes::from(body).into())
            .await
            .map(|_| ())
            .map_err(|e| Error::storage(format!("write {key}"), e))
    }

    /// Deletes complete snapshots beyond the newest `keep` (never the current one) and stale
    /// incomplete run directories. Returns the deleted run ids.
    pub async fn retain(&self, keep: usize, now: DateTime<Utc>) -> Result<Vec<String>, Error> {
        let current = self.current().await?.map(|m| m.run_id);
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
            if Some(&run_id) == current.as_ref() {
                continue;
            }
            match self.read_manifest(&format!("{dir}/{RUN_MANIFEST}")).await? {
                Some(m) => complete.push((parse_time(&m.started_at), run_id)),
                None => {
                    let newest = self
                        .store
                        .list(Some(&dir))
                        .map_ok(|m| m.last_modified)
                        .try_fold(
                            None,
                            |acc: Option<DateTime<Utc>>, t| async move { Ok(acc.max(Some(t))) },
                        )
                        .await
                        .map_err(|e| Error::storage(format!("list {dir}/"), e))?;
                    if newest.is_none_or(|t| now - t > INCOMPLETE_GRACE) {
                        doomed.push(run_id);
                    }
                }
            }
        }
        // Newest first; the current snapshot counts as one of the `keep`.
        complete.sort_by(|a, b| b.cmp(a));
        let keep_others = keep.saturating_sub(usize::from(current.is_some()));
        doomed.extend(complete.into_iter().skip(keep_others).map(|(_, id)| id));
        for run_id in &doomed {
            let removed = self.delete_prefix(&run_prefix(run_id)).await?;
            tracing::info!(run_id, removed, "retention deleted a snapshot");
        }
        Ok(doomed)
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

/// Parses an RFC 3339 time from a manifest; `None` sorts an unreadable one oldest.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use object_store::memory::InMemory;
    use stockflight_proto::layout::{MANIFEST_FORMAT_VERSION, TableManifest};

    use super::*;

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

    async fn write_run(p: &Publisher, store: &Arc<dyn ObjectStore>, run_id: &str, started_at: &str) {
        store
            .put(
                &Path::from(format!("snapshots/{run_id}/t/part-0.parquet")),
                Bytes::from_static(b"data").into(),
            )
            .await
            .unwrap();
        p.commit(&manifest(run_id, started_at)).await.unwrap();
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

    #[tokio::test]
    async fn retention_keeps_the_newest_k_and_the_current() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let p = Publisher::new(store.clone(), None);
        for h in 0..5 {
            write_run(&p, &store, &format!("r{h}"), &format!("2026-11-25T0{h}:00:00Z")).await;
        }
        let now = parse_time("2026-11-25T06:00:00Z").unwrap();
        let deleted = p.retain(3, now).await.unwrap();
        assert_eq!(deleted.len(), 2, "{deleted:?}");
        assert_eq!(runs(&store).await, ["r2", "r3", "r4"]);
        assert_eq!(p.current().await.unwrap().unwrap().run_id, "r4");
    }

    #[tokio::test]
    async fn incomplete_runs_are_wiped_on_rerun_and_kept_while_young() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let p = Publisher::new(store.clone(), None);
        write_run(&p, &store, "r1", "2026-11-25T00:00:00Z").await;
        store
            .put(
                &Path::from("snapshots/r2/t/half.parquet"),
                Bytes::from_static(b"x").into(),
            )
            .await
            .unwrap();
        // Young and incomplete: retention leaves it (someone may be writing it).
        assert!(p.retain(1, Utc::now()).await.unwrap().is_empty());
        assert_eq!(runs(&store).await, ["r1", "r2"]);
        // Re-running r2 wipes the half-written files first.
        assert!(matches!(p.prepare("r2").await.unwrap(), Prepared::Fresh));
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
        assert_eq!(p.retain(1, later).await.unwrap(), ["r3"]);
    }

    #[tokio::test]
    async fn a_published_run_is_not_rewritten_and_its_publication_is_finished() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let p = Publisher::new(store.clone(), None);
        write_run(&p, &store, "r1", "2026-11-25T00:00:00Z").await;
        // r2 died after its own manifest, before CURRENT.
        let r2 = manifest("r2", "2026-11-25T06:00:00Z");
        store
            .put(
                &Path::from("snapshots/r2/_manifest.json"),
                Bytes::from(r2.to_json()).into(),
            )
            .await
            .unwrap();
        assert_eq!(p.current().await.unwrap().unwrap().run_id, "r1");
        assert!(matches!(p.prepare("r2").await.unwrap(), Prepared::AlreadyPublished(_)));
        assert_eq!(p.current().await.unwrap().unwrap().run_id, "r2");
        // Re-running the older r1 does not roll CURRENT back.
        assert!(matches!(p.prepare("r1").await.unwrap(), Prepared::AlreadyPublished(_)));
        assert_eq!(p.current().await.unwrap().unwrap().run_id, "r2");
    }
}

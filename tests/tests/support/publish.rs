//! Arrangement of the publication tests: one store (a local directory or a Swift prefix) with
//! reference data and a keyspace with availability rows, the batch runs against it, and what
//! they published read back as the batch job wrote it (`PublishedManifest`).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use scylla::client::session::Session;
use stockflight_proto::layout::{PublishedManifest, SnapshotManifest};
use stockflight_tests::Swift;

use super::support;

/// A store and a keyspace loaded with the same small data set.
pub struct Target {
    /// Session on the test Cassandra.
    pub session: Session,
    /// The keyspace, unique to the test.
    pub keyspace: String,
    /// The store the batch publishes to.
    pub store: Arc<dyn ObjectStore>,
    /// The storage flags of the batch.
    pub args: Vec<String>,
    /// The directory to remove afterwards, for a local store.
    dir: Option<std::path::PathBuf>,
}

fn data() -> support::DataSet {
    support::generate(40, 8, 80, 73)
}

impl Target {
    /// A local directory (`file://`).
    pub async fn local(prefix: &str) -> Self {
        let loaded = support::Loaded::local(prefix, &data()).await;
        Self {
            session: loaded.session,
            keyspace: loaded.keyspace,
            store: loaded.store,
            args: vec!["--storage-url".into(), loaded.url],
            dir: Some(loaded.dir),
        }
    }

    /// A fresh prefix on the stack's Swift, through its S3 API.
    pub async fn swift(prefix: &str) -> Self {
        let data = data();
        let (session, keyspace) = support::cassandra_keyspace(prefix).await;
        support::insert(&session, &keyspace, &data.rows).await;
        let swift = Swift::new(prefix);
        let store = swift.store();
        support::write_reference(&store, &data).await;
        Self {
            session,
            keyspace,
            store,
            args: swift.flags(),
            dir: None,
        }
    }

    fn storage_args(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }

    /// Starts a batch run without waiting for it.
    pub fn spawn(&self, extra: &[&str]) -> support::BatchProcess {
        support::BatchProcess::spawn(&self.keyspace, &self.storage_args(), extra)
    }

    /// Runs the batch to completion and asserts it published `run_id`.
    pub async fn assert_published(&self, extra: &[&str], run_id: &str) {
        let stdout = support::assert_success(&support::run_batch(&self.keyspace, &self.storage_args(), extra));
        assert!(stdout.contains(&format!("run {run_id} published")), "{stdout}");
        assert_eq!(self.current().await.manifest.run_id, run_id);
    }

    /// `CURRENT` as written.
    pub async fn current_bytes(&self) -> Vec<u8> {
        self.store
            .get(&Path::from("CURRENT"))
            .await
            .expect("CURRENT exists")
            .bytes()
            .await
            .unwrap()
            .to_vec()
    }

    /// `CURRENT` with its publication keys.
    pub async fn current(&self) -> PublishedManifest {
        PublishedManifest::from_json(&self.current_bytes().await).expect("CURRENT parses")
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> bool {
        match self.store.head(&Path::from(key)).await {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => panic!("head {key}: {e}"),
        }
    }

    /// The run's own copy of its manifest.
    pub async fn manifest_of(&self, run_id: &str) -> PublishedManifest {
        let key = format!("snapshots/{run_id}/_manifest.json");
        let bytes = self
            .store
            .get(&Path::from(key.as_str()))
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"))
            .bytes()
            .await
            .unwrap();
        PublishedManifest::from_json(&bytes).expect("the run's manifest parses")
    }

    /// Rewrites the run's manifest as if it had been published `ago` earlier (the run must not
    /// be current).
    pub async fn age_publication(&self, run_id: &str, ago: chrono::TimeDelta) {
        assert_ne!(self.current().await.manifest.run_id, run_id, "only a replaced run");
        let mut m = self.manifest_of(run_id).await;
        let published = chrono::DateTime::parse_from_rfc3339(&m.manifest.published_at).expect("published_at");
        m.manifest.published_at = (published - ago).to_rfc3339();
        let key = Path::from(format!("snapshots/{run_id}/_manifest.json"));
        self.store
            .put(&key, m.to_json().into())
            .await
            .expect("rewrite the manifest");
    }

    /// Every object under `prefix`.
    pub async fn objects_under(&self, prefix: &str) -> Vec<String> {
        self.store
            .list(Some(&Path::from(prefix)))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("list")
    }

    /// Every file `manifest` lists is there, with the bytes it says.
    pub async fn assert_files_of(&self, manifest: &SnapshotManifest) {
        for (name, table) in &manifest.tables {
            let mut bytes = 0;
            for file in &table.files {
                let meta = self
                    .store
                    .head(&Path::from(file.as_str()))
                    .await
                    .unwrap_or_else(|e| panic!("{} of run {}: {e}", file, manifest.run_id));
                bytes += meta.size;
            }
            assert_eq!(bytes, table.bytes, "bytes of {name} in run {}", manifest.run_id);
        }
    }

    /// The manifest of `run_id` lists exactly the Parquet files under its prefix, with their
    /// sizes: what the writers wrote.
    pub async fn assert_lists_what_it_wrote(&self, run_id: &str) {
        let bytes = self
            .store
            .get(&Path::from(format!("snapshots/{run_id}/_manifest.json")))
            .await
            .expect("the run's manifest")
            .bytes()
            .await
            .unwrap();
        let manifest = PublishedManifest::from_json(&bytes).unwrap().manifest;
        let listed: BTreeSet<String> = manifest.tables.values().flat_map(|t| t.files.iter().cloned()).collect();
        let stored: BTreeSet<String> = self
            .store
            .list(Some(&Path::from(format!("snapshots/{run_id}"))))
            .map_ok(|m| m.location.to_string())
            .try_collect::<BTreeSet<_>>()
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.ends_with(".parquet"))
            .collect();
        assert_eq!(listed, stored, "the manifest lists the run's files, no more, no fewer");
        self.assert_files_of(&manifest).await;
    }

    /// Drops the keyspace and removes what the test stored.
    pub async fn cleanup(self) {
        if let Some(dir) = &self.dir {
            std::fs::remove_dir_all(dir).ok();
        } else {
            let all: Vec<_> = self.store.list(None).try_collect().await.expect("list");
            for object in all {
                self.store.delete(&object.location).await.ok();
            }
        }
        support::drop_keyspace(&self.session, &self.keyspace).await;
    }
}

/// Removes the run lease row of `keyspace`, as the expiry of its TTL would.
pub async fn expire_lease(session: &Session, keyspace: &str) {
    session
        .query_unpaged(
            format!("DELETE FROM {keyspace}.batch_lease WHERE name = 'stockflight-batch'"),
            (),
        )
        .await
        .expect("expire the lease");
    support::wait_lease(session, keyspace, "the lease row is gone", |o| o.is_none()).await;
}

/// Replaces the run lease of `keyspace` by one held by `owner` (as if the holder's lease had
/// expired and `owner` had taken it).
pub async fn take_over_lease(session: &Session, keyspace: &str, owner: &str) {
    expire_lease(session, keyspace).await;
    session
        .query_unpaged(
            format!(
                "INSERT INTO {keyspace}.batch_lease (name, owner, acquired_at, epoch) \
                 VALUES ('stockflight-batch', ?, toTimestamp(now()), 1000000) USING TTL 600"
            ),
            (owner,),
        )
        .await
        .expect("take the lease");
    support::wait_lease(session, keyspace, "the lease is taken over", |o| o == Some(owner)).await;
}

/// The Swift store of `swift`, opened without retries (Swift answers 501 to a conditional PUT,
/// which clients otherwise retry as a server error).
pub fn swift_without_retries(swift: &Swift) -> Arc<dyn ObjectStore> {
    let s = &swift.section;
    let rest = swift.url.strip_prefix("s3://").expect("an s3:// url");
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let retry = object_store::RetryConfig {
        max_retries: 0,
        ..Default::default()
    };
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&s.region)
        .with_endpoint(s.endpoint.clone().expect("a Swift endpoint"))
        .with_access_key_id(s.access_key_id.clone().expect("a key id"))
        .with_secret_access_key(s.secret_access_key.clone().expect("a secret"))
        .with_virtual_hosted_style_request(false)
        .with_allow_http(true)
        .with_retry(retry)
        .build()
        .expect("open Swift");
    Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
}

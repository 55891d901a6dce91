//! A read-only view of the object store that shows exactly the files one snapshot lists.
//!
//! DataFusion lists a table's directory to find its files; through this view it finds the
//! manifest's files and nothing else (no half-written run, no stray object), and no query can
//! read, write or delete anything outside the published tables.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result,
};

/// The files of one snapshot, read through the real store.
#[derive(Debug)]
pub struct SnapshotStore {
    inner: Arc<dyn ObjectStore>,
    files: BTreeMap<Path, ObjectMeta>,
}

impl SnapshotStore {
    /// A view of `inner` limited to `files` (metadata as the store reported it).
    pub fn new(inner: Arc<dyn ObjectStore>, files: impl IntoIterator<Item = ObjectMeta>) -> Self {
        let files = files.into_iter().map(|m| (m.location.clone(), m)).collect();
        Self { inner, files }
    }

    fn under<'a>(&'a self, prefix: Option<&'a Path>) -> impl Iterator<Item = &'a ObjectMeta> + 'a {
        self.files
            .values()
            .filter(move |m| prefix.is_none_or(|p| m.location.prefix_matches(p)))
    }
}

fn denied(path: &Path) -> object_store::Error {
    object_store::Error::PermissionDenied {
        path: path.to_string(),
        source: "the server's storage view is read-only".into(),
    }
}

impl fmt::Display for SnapshotStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnapshotStore({} files of {})", self.files.len(), self.inner)
    }
}

#[async_trait]
impl ObjectStore for SnapshotStore {
    async fn put_opts(&self, location: &Path, _payload: PutPayload, _opts: PutOptions) -> Result<PutResult> {
        Err(denied(location))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Err(denied(location))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if !self.files.contains_key(location) {
            return Err(object_store::Error::NotFound {
                path: location.to_string(),
                source: "not a file of the published snapshot".into(),
            });
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        locations.map(|p| p.and_then(|p| Err(denied(&p)))).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let found: Vec<_> = self.under(prefix).cloned().map(Ok).collect();
        futures::stream::iter(found).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let depth = prefix.map_or(0, |p| p.parts().count());
        let mut objects = Vec::new();
        let mut common_prefixes = Vec::new();
        for meta in self.under(prefix) {
            let parts: Vec<_> = meta.location.parts().collect();
            if parts.len() == depth + 1 {
                objects.push(meta.clone());
            } else {
                let dir = Path::from_iter(parts[..=depth].iter().cloned());
                if common_prefixes.last() != Some(&dir) {
                    common_prefixes.push(dir);
                }
            }
        }
        common_prefixes.dedup();
        Ok(ListResult {
            common_prefixes,
            objects,
        })
    }

    async fn copy_opts(&self, _from: &Path, to: &Path, _options: CopyOptions) -> Result<()> {
        Err(denied(to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    async fn store() -> SnapshotStore {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut metas = Vec::new();
        for p in [
            "s/r1/t/region=a/0.parquet",
            "s/r1/t/region=b/0.parquet",
            "s/r1/u/0.parquet",
        ] {
            inner
                .put(&Path::from(p), Bytes::from_static(b"x").into())
                .await
                .unwrap();
            metas.push(inner.head(&Path::from(p)).await.unwrap());
        }
        inner
            .put(
                &Path::from("s/r1/t/region=c/stray.parquet"),
                Bytes::from_static(b"x").into(),
            )
            .await
            .unwrap();
        SnapshotStore::new(inner, metas)
    }

    #[tokio::test]
    async fn lists_only_manifest_files() {
        let view = store().await;
        let listed: Vec<_> = view.list(Some(&Path::from("s/r1/t"))).try_collect().await.unwrap();
        assert_eq!(listed.len(), 2);
        let dirs = view.list_with_delimiter(Some(&Path::from("s/r1/t"))).await.unwrap();
        let names: Vec<_> = dirs.common_prefixes.iter().map(|p| p.to_string()).collect();
        assert_eq!(names, ["s/r1/t/region=a", "s/r1/t/region=b"]);
        assert!(view.get(&Path::from("s/r1/t/region=c/stray.parquet")).await.is_err());
        assert!(view.get(&Path::from("s/r1/u/0.parquet")).await.is_ok());
    }

    #[tokio::test]
    async fn refuses_writes() {
        let view = store().await;
        let err = view
            .put(&Path::from("s/r1/u/0.parquet"), Bytes::from_static(b"y").into())
            .await
            .unwrap_err();
        assert!(matches!(err, object_store::Error::PermissionDenied { .. }), "{err}");
        assert!(view.delete(&Path::from("s/r1/u/0.parquet")).await.is_err());
    }
}

//! The object store behind `storage.url`: a local directory or an S3 bucket (AWS, OpenStack
//! Swift's S3 API, MinIO), rooted at the configured prefix.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;

use crate::config::ConfigError;
use crate::sections::StorageSection;

/// Where `storage.url` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// A local directory (absolute after parsing).
    Local(PathBuf),
    /// A bucket and a key prefix inside it (no leading or trailing `/`; may be empty).
    S3 { bucket: String, prefix: String },
}

impl StorageLocation {
    /// Parses `file:///dir`, a plain path (relative to the working directory) or `s3://bucket/prefix`.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::invalid("storage.url", format!("`{url}`: {reason}"));
        if url.trim().is_empty() {
            return Err(invalid("must not be empty".into()));
        }
        if !url.contains("://") {
            let path = std::path::absolute(url).map_err(|e| invalid(e.to_string()))?;
            return Ok(Self::Local(path));
        }
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        match parsed.scheme() {
            "file" => {
                let path = parsed.to_file_path().map_err(|()| {
                    invalid("a file URL needs an absolute path, e.g. file:///var/lib/stockflight".into())
                })?;
                Ok(Self::Local(path))
            }
            "s3" | "s3a" => {
                let bucket = parsed
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| invalid("names no bucket".into()))?;
                let prefix = parsed.path().trim_matches('/').to_string();
                Ok(Self::S3 {
                    bucket: bucket.to_string(),
                    prefix,
                })
            }
            other => Err(invalid(format!("unsupported scheme `{other}` (use file:// or s3://)"))),
        }
    }
}

impl std::fmt::Display for StorageLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(path) => write!(f, "file://{}", path.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// `storage.*` is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The local directory could not be created.
    #[error("storage directory {path}: {source}")]
    Directory { path: PathBuf, source: std::io::Error },
    /// The object-store client could not be built.
    #[error("storage {location}: {source}")]
    Client {
        location: String,
        source: object_store::Error,
    },
}

/// An opened store; every path given to [`Storage::store`] is relative to the storage root.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    location: StorageLocation,
}

impl Storage {
    /// Opens the store `section` describes; a local directory is created if missing.
    pub fn open(section: &StorageSection) -> Result<Self, StorageError> {
        section.validate()?;
        let location = StorageLocation::parse(&section.url)?;
        let client_err = |source| StorageError::Client {
            location: location.to_string(),
            source,
        };
        let store: Arc<dyn ObjectStore> = match &location {
            StorageLocation::Local(path) => {
                std::fs::create_dir_all(path).map_err(|source| StorageError::Directory {
                    path: path.clone(),
                    source,
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(path).map_err(client_err)?)
            }
            StorageLocation::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(&section.region)
                    .with_virtual_hosted_style_request(!section.path_style)
                    .with_allow_http(section.allow_http);
                if let Some(endpoint) = &section.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let (Some(key), Some(secret)) = (&section.access_key_id, &section.secret_access_key) {
                    builder = builder.with_access_key_id(key).with_secret_access_key(secret);
                }
                let s3 = builder.build().map_err(client_err)?;
                if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix.as_str()))
                }
            }
        };
        Ok(Self { store, location })
    }

    /// Wraps an existing store (unit tests use object_store's in-memory store).
    pub fn from_store(store: Arc<dyn ObjectStore>, location: StorageLocation) -> Self {
        Self { store, location }
    }

    /// The store, rooted at the configured prefix.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Where the root is, for logs and messages.
    pub fn location(&self) -> &StorageLocation {
        &self.location
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::path::Path;

    #[test]
    fn parses_locations() {
        assert_eq!(
            StorageLocation::parse("s3://bucket/a/b/").unwrap(),
            StorageLocation::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            StorageLocation::parse("file:///var/lib/sf").unwrap(),
            StorageLocation::Local("/var/lib/sf".into())
        );
        let relative = StorageLocation::parse("data/dir").unwrap();
        assert_eq!(
            relative,
            StorageLocation::Local(std::env::current_dir().unwrap().join("data/dir"))
        );
        let err = StorageLocation::parse("gs://bucket").unwrap_err().to_string();
        assert!(err.contains("storage.url") && err.contains("gs"), "{err}");
        assert!(StorageLocation::parse("s3:///nobucket").is_err());
    }

    #[tokio::test]
    async fn local_store_is_rooted_and_created() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("nested/root");
        let storage = Storage::open(&StorageSection::local(format!("file://{}", root.display()))).unwrap();
        storage
            .store()
            .put(&Path::from("snapshots/x/t.parquet"), Bytes::from_static(b"data").into())
            .await
            .unwrap();
        assert_eq!(std::fs::read(root.join("snapshots/x/t.parquet")).unwrap(), b"data");
        let listed: Vec<_> = storage
            .store()
            .list(Some(&Path::from("snapshots")))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].location.as_ref(), "snapshots/x/t.parquet");
    }

    #[test]
    fn s3_store_builds_without_network() {
        let mut section = StorageSection::local("s3://bucket/prefix");
        section.endpoint = Some("http://127.0.0.1:1".into());
        section.allow_http = true;
        section.access_key_id = Some("k".into());
        section.secret_access_key = Some("s".into());
        let storage = Storage::open(&section).unwrap();
        assert_eq!(storage.location().to_string(), "s3://bucket/prefix");
    }
}

//! Where Stockflight's data lives under the configured storage root, and the manifest that
//! publishes a snapshot.
//!
//! ```text
//! reference/items/items.parquet   item catalog (see `reference::ITEMS_COLUMNS`)
//! reference/nodes/nodes.parquet   node/location dimension (see `reference::NODES_COLUMNS`)
//! snapshots/<run-id>/<table>/…    one batch run's Parquet tables (Hive-style partitions inside)
//! CURRENT                         JSON `SnapshotManifest` of the published run, written last
//! CURRENT.lock                    local directories only: held (flock) by the batch job while it
//!                                 reads and writes CURRENT; never read by servers
//! ```
//!
//! Readers (the server) read `CURRENT` and open exactly the files it lists: files of a run that
//! has not published yet, or of one that died half-way, are never seen.
//!
//! The batch job writes a [`PublishedManifest`]: the [`SnapshotManifest`] plus, in the same JSON
//! object, how it was published ([`Publication`]: the fencing token of the run lease and the
//! snapshot it replaced). Readers that only know [`SnapshotManifest`] ignore those keys, and
//! manifests written before they existed parse with their defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Prefix of the reference data (item catalog, node dimension).
pub const REFERENCE_PREFIX: &str = "reference";
/// Prefix under which each batch run writes its tables.
pub const SNAPSHOTS_PREFIX: &str = "snapshots";
/// The pointer object that publishes a snapshot; written last, so readers never see a partial run.
pub const CURRENT_POINTER: &str = "CURRENT";
/// On a local directory, the lock file the batch job holds from its read of `CURRENT` to its write.
pub const CURRENT_LOCK: &str = "CURRENT.lock";
/// Version of the manifest format below.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// Prefix of one reference table, e.g. `reference/items`.
pub fn reference_table(table: &str) -> String {
    format!("{REFERENCE_PREFIX}/{table}")
}

/// Prefix of one table of one run, e.g. `snapshots/20261125T060000Z/availability_by_node`.
pub fn snapshot_table(run_id: &str, table: &str) -> String {
    format!("{SNAPSHOTS_PREFIX}/{run_id}/{table}")
}

/// The consistent set of tables one batch run published; the content of `CURRENT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotManifest {
    /// [`MANIFEST_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// The run's id; also its directory under `snapshots/`.
    pub run_id: String,
    /// When the run started scanning, RFC 3339 UTC. Data is as of this time.
    pub started_at: String,
    /// When the run published, RFC 3339 UTC.
    pub published_at: String,
    /// Tables by SQL name (`availability_by_node`, …).
    pub tables: BTreeMap<String, TableManifest>,
}

/// How a snapshot was published, recorded beside its [`SnapshotManifest`] (all keys optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// Fencing token of the run lease the publishing run held; tokens grow with every lease
    /// acquisition, so a larger one was published by a later lease holder. 0: not recorded.
    #[serde(default)]
    pub lease_epoch: u64,
    /// Run id of the snapshot that was `CURRENT` when this one replaced it; `None` when there
    /// was none (or it was not recorded). Retention follows this chain back from `CURRENT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
}

/// A manifest as the batch job writes it: the reader's [`SnapshotManifest`] and the
/// [`Publication`] keys in one JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedManifest {
    /// What readers use.
    #[serde(flatten)]
    pub manifest: SnapshotManifest,
    /// How it was published.
    #[serde(flatten)]
    pub publication: Publication,
}

impl PublishedManifest {
    /// Parses a manifest, refusing a format this reader does not know; keys of
    /// [`Publication`] missing from an older manifest take their defaults.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let published: Self = serde_json::from_slice(bytes).map_err(|e| format!("snapshot manifest: {e}"))?;
        check_format(published.manifest.format_version)?;
        Ok(published)
    }

    /// Serializes for `CURRENT` and a run's `_manifest.json`.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest serializes")
    }
}

fn check_format(version: u32) -> Result<(), String> {
    if version != MANIFEST_FORMAT_VERSION {
        return Err(format!(
            "snapshot manifest format {version} is not supported (this build reads {MANIFEST_FORMAT_VERSION})"
        ));
    }
    Ok(())
}

/// One published table: the exact files that make it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableManifest {
    /// Object paths relative to the storage root, e.g.
    /// `snapshots/<run>/availability_snapshot/region=west/part-0.parquet`.
    pub files: Vec<String>,
    /// Hive partition columns encoded in the paths (`region`), in path order; empty if none.
    #[serde(default)]
    pub partition_columns: Vec<String>,
    /// Total rows over all files.
    pub rows: u64,
    /// Total bytes over all files.
    pub bytes: u64,
}

impl SnapshotManifest {
    /// Parses `CURRENT`, refusing a format this reader does not know.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let manifest: Self = serde_json::from_slice(bytes).map_err(|e| format!("snapshot manifest: {e}"))?;
        check_format(manifest.format_version)?;
        Ok(manifest)
    }

    /// Serializes for `CURRENT`.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest serializes")
    }
}

/// Columns of the reference tables, shared by the load generator (writer) and the batch (reader).
pub mod reference {
    /// Item catalog table name and object prefix under `reference/`.
    pub const ITEMS: &str = "items";
    /// Node dimension table name and object prefix under `reference/`.
    pub const NODES: &str = "nodes";
    /// `items`: (column, Arrow type) in order; `item_id` is the key.
    pub const ITEMS_COLUMNS: &[(&str, &str)] = &[
        ("item_id", "Utf8"),
        ("name", "Utf8"),
        ("department", "Utf8"),
        ("category", "Utf8"),
        ("brand", "Utf8"),
        ("price", "Float64"),
    ];
    /// `nodes`: (column, Arrow type) in order; `node_id` is the key. `node_type` is one of
    /// `store`, `warehouse`, `fulfilment_centre`.
    pub const NODES_COLUMNS: &[(&str, &str)] = &[
        ("node_id", "Utf8"),
        ("node_type", "Utf8"),
        ("region", "Utf8"),
        ("state", "Utf8"),
        ("city", "Utf8"),
        ("latitude", "Float64"),
        ("longitude", "Float64"),
    ];
}

/// Attributes of a reference table that a snapshot table carries copies of, row by row: the
/// batch joins `availability_snapshot` with `items` on `item_id` and with `nodes` on `node_id`
/// and keeps their attributes. A reader may answer `snapshot JOIN items ON item_id` from the
/// snapshot's own columns, but only after checking the copies against the served reference
/// table (a copy is `COALESCE(attribute, 'unknown')` for some columns, and the reference data
/// may have changed since the run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denormalized {
    /// The table holding the copies.
    pub table: &'static str,
    /// The reference table copied from.
    pub reference: &'static str,
    /// (column of `table`, key column of `reference`) the rows are matched on.
    pub key: (&'static str, &'static str),
    /// (column of `reference`, its copy in `table`).
    pub columns: &'static [(&'static str, &'static str)],
}

/// What `availability_snapshot` copies from the reference tables (see `batch/src/tables.rs`).
pub const DENORMALIZED: &[Denormalized] = &[
    Denormalized {
        table: "availability_snapshot",
        reference: reference::ITEMS,
        key: ("item_id", "item_id"),
        columns: &[
            ("name", "item_name"),
            ("department", "department"),
            ("category", "category"),
            ("brand", "brand"),
            ("price", "price"),
        ],
    },
    Denormalized {
        table: "availability_snapshot",
        reference: reference::NODES,
        key: ("node_id", "node_id"),
        columns: &[
            ("node_type", "node_type"),
            ("region", "region"),
            ("state", "state"),
            ("city", "city"),
            ("latitude", "latitude"),
            ("longitude", "longitude"),
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> SnapshotManifest {
        let table = TableManifest {
            files: vec!["snapshots/r1/availability_by_node/part-0.parquet".into()],
            partition_columns: vec![],
            rows: 10,
            bytes: 1234,
        };
        SnapshotManifest {
            format_version: MANIFEST_FORMAT_VERSION,
            run_id: "r1".into(),
            started_at: "2026-11-25T06:00:00Z".into(),
            published_at: "2026-11-25T06:03:00Z".into(),
            tables: BTreeMap::from([("availability_by_node".to_string(), table)]),
        }
    }

    #[test]
    fn manifest_round_trips() {
        let m = manifest();
        assert_eq!(SnapshotManifest::from_json(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn publication_keys_are_optional_and_ignored_by_plain_readers() {
        let plain = manifest();
        // An old manifest (no publication keys) parses with the defaults.
        let old = PublishedManifest::from_json(&plain.to_json()).unwrap();
        assert_eq!(old.manifest, plain);
        assert_eq!(old.publication, Publication::default());
        // A new one round-trips, and a reader of `SnapshotManifest` still reads it.
        let new = PublishedManifest {
            manifest: plain.clone(),
            publication: Publication {
                lease_epoch: 7,
                supersedes: Some("r0".into()),
            },
        };
        let json = new.to_json();
        assert_eq!(PublishedManifest::from_json(&json).unwrap(), new);
        assert_eq!(SnapshotManifest::from_json(&json).unwrap(), plain);
        let text = String::from_utf8(json).unwrap();
        assert!(text.contains("\"lease_epoch\": 7"), "{text}");
    }

    #[test]
    fn unknown_format_is_refused() {
        let mut m = manifest();
        m.format_version = 99;
        let err = SnapshotManifest::from_json(&m.to_json()).unwrap_err();
        assert!(err.contains("format 99"), "{err}");
    }
}

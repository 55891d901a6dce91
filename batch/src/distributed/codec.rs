//! How our plan nodes cross the network: the coordinator encodes each as JSON of its spec (the
//! token ranges, page options, object prefixes and receipt book), every worker decodes it into
//! the same node. Registered on both sides (`plan.rs`, `worker.rs`).

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};

use super::scan_exec::{CassandraScanExec, ScanSpec};
use super::snapshot_exec::{SnapshotSpec, SnapshotWriteExec};
use super::tables_exec::{TablesSpec, TablesWriteExec};

/// The nodes of a distributed run, as they travel.
#[derive(Debug, Serialize, Deserialize)]
enum Node {
    Scan(ScanSpec),
    Snapshot(SnapshotSpec),
    Tables(TablesSpec),
}

/// Encodes and decodes [`CassandraScanExec`], [`SnapshotWriteExec`] and [`TablesWriteExec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchCodec;

fn codec_error(what: &str, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Internal(format!("stockflight plan codec: {what}: {e}"))
}

impl PhysicalExtensionCodec for BatchCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let node: Node = serde_json::from_slice(buf).map_err(|e| codec_error("decode", e))?;
        let one_input = || match inputs {
            [input] => Ok(input.clone()),
            _ => Err(codec_error(
                "decode",
                format!("expected one input, got {}", inputs.len()),
            )),
        };
        Ok(match node {
            Node::Scan(spec) => Arc::new(CassandraScanExec::new(spec)?),
            Node::Snapshot(spec) => Arc::new(SnapshotWriteExec::new(spec, one_input()?)),
            Node::Tables(spec) => Arc::new(TablesWriteExec::new(spec, one_input()?)),
        })
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let encoded = if let Some(scan) = node.downcast_ref::<CassandraScanExec>() {
            Node::Scan(scan.spec().clone())
        } else if let Some(snapshot) = node.downcast_ref::<SnapshotWriteExec>() {
            Node::Snapshot(snapshot.spec().clone())
        } else if let Some(tables) = node.downcast_ref::<TablesWriteExec>() {
            Node::Tables(tables.spec().clone())
        } else {
            return Err(codec_error("encode", format!("not one of ours: {}", node.name())));
        };
        serde_json::to_writer(buf, &encoded).map_err(|e| codec_error("encode", e))
    }
}

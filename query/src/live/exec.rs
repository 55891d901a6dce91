//! `MapExec`: a plan node that transforms each batch of its input as it streams. The live tables
//! use it to join Cassandra's raw rows with the reference data (reporting the read's failures
//! as UNAVAILABLE) and to drop the snapshot rows a change replaced.

use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
};
use futures::StreamExt;

/// What a [`MapExec`] does to each batch.
pub type BatchFn = Arc<dyn Fn(RecordBatch) -> Result<RecordBatch> + Send + Sync>;

/// Applies a function to every batch of its input; its input's failures pass through
/// `on_error`.
pub struct MapExec {
    label: &'static str,
    input: Arc<dyn ExecutionPlan>,
    map: BatchFn,
    on_error: fn(DataFusionError) -> DataFusionError,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for MapExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MapExec({})", self.label)
    }
}

impl MapExec {
    /// `map` over `input`, producing batches of `schema`; `label` names it in plans.
    pub fn new(
        label: &'static str,
        input: Arc<dyn ExecutionPlan>,
        schema: SchemaRef,
        map: BatchFn,
        on_error: fn(DataFusionError) -> DataFusionError,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            label,
            input,
            map,
            on_error,
            schema,
            properties,
        }
    }
}

impl DisplayAs for MapExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "MapExec: {}", self.label)
    }
}

impl ExecutionPlan for MapExec {
    fn name(&self) -> &str {
        "MapExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children
            .into_iter()
            .next()
            .ok_or_else(|| DataFusionError::Internal("MapExec needs its input".into()))?;
        Ok(Arc::new(Self::new(
            self.label,
            input,
            self.schema.clone(),
            self.map.clone(),
            self.on_error,
        )))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let on_error = self.on_error;
        let input = self.input.execute(partition, context).map_err(on_error)?;
        let map = self.map.clone();
        let mapped = input.map(move |batch| map(batch.map_err(on_error)?));
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), mapped)))
    }
}

//! Writing one output table as Parquet under a run's prefix, and describing what was written.

use std::sync::Arc;

use arrow::array::UInt64Array;
use arrow::datatypes::DataType;
use datafusion::common::config::TableParquetOptions;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::format_as_file_type;
use datafusion::datasource::file_format::parquet::ParquetFormatFactory;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{cast, ident};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use stockflight_proto::layout::TableManifest;

use crate::engine::url_of;
use crate::error::Error;

/// How Parquet files are written: zstd, page-level statistics (min/max for pruning), row groups
/// of `row_group_rows`.
pub fn parquet_options(row_group_rows: usize) -> TableParquetOptions {
    let mut options = TableParquetOptions::default();
    options.global.compression = Some("zstd(3)".into());
    options.global.statistics_enabled = Some("page".into());
    options.global.max_row_group_size = row_group_rows;
    // One serial writer per file: its buffer is one row group, which keeps the writers' share
    // of the memory limit predictable; partitioned tables still write their files in parallel.
    options.global.allow_single_file_parallelism = false;
    options
}

/// Casts column types BI drivers map badly to ones they read: string views and large or
/// dictionary strings to `Utf8`.
pub fn bi_types(df: DataFrame) -> Result<DataFrame, Error> {
    let exprs: Vec<_> = df
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _) => {
                cast(ident(f.name()), DataType::Utf8).alias(f.name())
            }
            _ => ident(f.name()),
        })
        .collect();
    Ok(df.select(exprs)?)
}

/// What writing one table spilled to disk (operators over the memory limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spill {
    /// Spill files written.
    pub files: usize,
    /// Bytes spilled.
    pub bytes: usize,
}

/// Writes `df` as Parquet files under `prefix` (relative to the storage root), Hive-partitioned
/// by `partition_by`, and lists what was written.
pub async fn write_table(
    df: DataFrame,
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    partition_by: &[&str],
    row_group_rows: usize,
) -> Result<(TableManifest, Spill), Error> {
    let df = bi_types(df)?;
    let (state, plan) = df.into_parts();
    let format = Arc::new(ParquetFormatFactory::new_with_options(parquet_options(row_group_rows)));
    let copy = LogicalPlanBuilder::copy_to(
        plan,
        url_of(&format!("{prefix}/")),
        format_as_file_type(format),
        Default::default(),
        partition_by.iter().map(|c| c.to_string()).collect(),
    )?
    .build()?;
    // Executed by hand (not `DataFrame::write_parquet`) to read the plan's spill metrics after.
    let physical = state.create_physical_plan(&copy).await?;
    tracing::debug!(table = prefix, plan = %datafusion::physical_plan::displayable(physical.as_ref()).indent(false), "plan");
    let counts = collect(physical.clone(), state.task_ctx()).await?;
    let rows = counts
        .iter()
        .filter_map(|b| b.column(0).as_any().downcast_ref::<UInt64Array>())
        .flat_map(|a| a.iter().flatten())
        .sum();
    let mut files: Vec<(String, u64)> = store
        .list(Some(&Path::from(prefix)))
        .map_ok(|m| (m.location.to_string(), m.size))
        .try_collect()
        .await
        .map_err(|e| Error::storage(format!("list {prefix}/"), e))?;
    files.retain(|(f, _)| f.ends_with(".parquet"));
    files.sort();
    let manifest = TableManifest {
        bytes: files.iter().map(|(_, size)| size).sum(),
        files: files.into_iter().map(|(f, _)| f).collect(),
        partition_columns: partition_by.iter().map(|c| c.to_string()).collect(),
        rows,
    };
    Ok((manifest, spill_of(physical.as_ref())))
}

/// Spill totals over every operator of an executed plan.
pub fn spill_of(plan: &dyn ExecutionPlan) -> Spill {
    let own = plan.metrics().map_or(Spill::default(), |m| Spill {
        files: m.spill_count().unwrap_or(0),
        bytes: m.spilled_bytes().unwrap_or(0),
    });
    plan.children().into_iter().fold(own, |acc, child| {
        let c = spill_of(child.as_ref());
        Spill {
            files: acc.files + c.files,
            bytes: acc.bytes + c.bytes,
        }
    })
}

//! Distributed runs (`distributed.workers`): the same pass as a single-process run, planned by
//! DataFusion and cut into stages by datafusion-distributed, run by `stockflight-batch worker`
//! processes. The token ranges are dealt to the scan's tasks, the joins and the `GROUPING SETS`
//! aggregation run on the workers, the workers write every Parquet file and record it in
//! Cassandra, and the coordinator publishes once, fenced by its lease (`run.rs`).

pub mod codec;
pub mod plan;
pub mod receipts;
pub mod scan_exec;
pub mod snapshot_exec;
pub mod tables_exec;
pub mod worker;

//! `stockflight-batch worker`: a process that runs the stages the coordinator of a distributed
//! run sends it. It hosts datafusion-distributed's `Worker` (an Arrow Flight service) on
//! `worker.addr`, decodes our plan nodes with [`BatchCodec`], reads Cassandra with the contact
//! points the plan names, and writes into its own `storage.*` root, which must be the
//! coordinator's (a plan for another root is refused). Its memory is bounded like a
//! single-process run's (`memory.limit_mb`, spilling to `memory.spill_dir`). It writes its
//! address to `worker.port_file` once it accepts connections, serves `/health` and `/metrics`,
//! and stops on SIGTERM/SIGINT.

use std::sync::Arc;

use datafusion::execution::TaskContext;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionConfig;
use datafusion_distributed::{DistributedExt, Worker, WorkerQueryContext};
use object_store::ObjectStore;
use stockflight_common::http::{self, Health};
use stockflight_common::shutdown;
use stockflight_common::storage::Storage;

use super::codec::BatchCodec;
use crate::engine;
use crate::error::Error;
use crate::settings::WorkerSettings;

/// The storage root a worker writes into, as its session knows it.
#[derive(Debug)]
struct WorkerStorage(String);

/// The object store a node of a distributed plan writes to: the worker's own, refused when the
/// plan was made for another root (`planned`, the coordinator's).
pub fn worker_store(ctx: &TaskContext, planned: &str) -> Result<Arc<dyn ObjectStore>, Error> {
    if let Some(own) = ctx.session_config().get_extension::<WorkerStorage>()
        && own.0 != planned
    {
        return Err(Error::Config(stockflight_common::config::ConfigError::invalid(
            "storage.url",
            format!(
                "this worker writes to {}, the coordinator of the run to {planned}: give both the same storage",
                own.0
            ),
        )));
    }
    let url = datafusion::execution::object_store::ObjectStoreUrl::parse(engine::STORE_URL)?;
    Ok(ctx.runtime_env().object_store(url)?)
}

/// The runtime every task of the worker shares: the memory pool, spill directory and store.
fn runtime(settings: &WorkerSettings, storage: &Storage) -> Result<Arc<RuntimeEnv>, Error> {
    let runtime = engine::runtime(settings.memory.limit_mb << 20, settings.memory.spill_dir.clone())?;
    let url = url::Url::parse(engine::STORE_URL).expect("static URL");
    runtime.register_object_store(&url, storage.store().clone());
    Ok(runtime)
}

/// Runs the worker until SIGTERM/SIGINT.
pub async fn serve(settings: WorkerSettings) -> Result<(), Error> {
    let health = Health::default();
    let ops = http::serve(settings.metrics.addr, health.clone()).await?;
    let storage = Storage::open(&settings.storage)?;
    let location = storage.location().to_string();
    let worker = Worker::from_session_builder(move |ctx: WorkerQueryContext| {
        let location = location.clone();
        async move {
            let mut builder = ctx.builder.with_distributed_user_codec(BatchCodec);
            let config = builder.config().get_or_insert_with(SessionConfig::new);
            config.set_extension(Arc::new(WorkerStorage(location)));
            Ok(builder.build())
        }
    })
    .with_runtime_env(runtime(&settings, &storage)?);
    let listener = tokio::net::TcpListener::bind(settings.worker.addr)
        .await
        .map_err(|e| Error::Storage(format!("worker.addr {}: {e}", settings.worker.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Storage(format!("worker.addr: {e}")))?;
    if let Some(path) = &settings.worker.port_file {
        // Written whole under another name, then renamed: a reader never sees half an address.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{addr}\n"))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| Error::Storage(format!("worker.port_file {}: {e}", path.display())))?;
    }
    tracing::info!(%addr, storage = %storage.location(), memory_limit_mib = settings.memory.limit_mb, "worker listening");
    health.set_ready(true);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let served = tonic::transport::Server::builder()
        .add_service(worker.into_worker_server())
        .serve_with_incoming_shutdown(incoming, shutdown::signal_received())
        .await;
    ops.task.abort();
    served.map_err(|e| Error::Storage(format!("worker service: {e}")))?;
    tracing::info!("worker stopped");
    Ok(())
}

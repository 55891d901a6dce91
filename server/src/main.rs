//! `stockflight-server`: Arrow Flight SQL over the published snapshots.
//!
//! Start-up: configuration, logging, the metrics endpoint, the object store and the current
//! snapshot (if any), then the gRPC server (Flight SQL, health, reflection) until SIGTERM/SIGINT.

mod error;
mod flight;
mod ops;
mod settings;

use std::io::Read;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use error::Error;
use settings::{ServerSettings, TlsSection};
use stockflight_common::http::{self, Health};
use stockflight_common::storage::Storage;
use stockflight_common::{config, exit, shutdown, telemetry};
use stockflight_query::Engine;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// mimalloc rather than the system allocator: planning a query allocates many small objects, and
/// glibc's malloc took a sixth of the server's CPU on small dashboard queries (perf, bench/server.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("hash-password") {
        return exit::finish("stockflight-server", hash_password());
    }
    exit::finish("stockflight-server", run())
}

/// `stockflight-server hash-password`: a password on stdin, its argon2 hash on stdout.
fn hash_password() -> Result<(), Error> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|source| Error::Io {
            what: "reading the password from stdin".into(),
            source,
        })?;
    let password = password.trim_end_matches(['\n', '\r']);
    println!("{}", flight::auth::hash_password(password)?);
    Ok(())
}

fn run() -> Result<(), Error> {
    let settings: ServerSettings = config::load()?;
    telemetry::init_logging(&settings.log)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            what: "starting the runtime".into(),
            source,
        })?
        .block_on(serve(settings))
}

async fn serve(settings: ServerSettings) -> Result<(), Error> {
    let health = Health::default();
    let ops = http::serve(settings.metrics.addr, health.clone()).await?;

    let storage = Storage::open(&settings.storage)?;
    let engine = Arc::new(Engine::new(storage.clone(), &settings.engine_options())?);
    let catalog = engine.catalog().clone();
    match catalog.refresh().await {
        Ok(Some(run_id)) => tracing::info!(%run_id, "serving snapshot"),
        Ok(None) => {
            tracing::warn!(storage = %storage.location(), "no snapshot published yet; queries get NOT_FOUND until one is")
        }
        Err(err) => tracing::error!(%err, "the published snapshot cannot be loaded; retrying every catalog.poll_secs"),
    }
    catalog.record_age();
    let refresher = catalog
        .clone()
        .spawn_refresh(Duration::from_secs(settings.catalog.poll_secs));

    let auth = Arc::new(flight::auth::Auth::new(&settings.auth));
    if !auth.enabled() {
        tracing::warn!("authentication is off (no auth.users or auth.tokens)");
    }
    let keep_alive = Duration::from_secs(settings.server.keep_alive_secs);
    let service = flight::service::StockflightFlightSql::new(engine, auth, keep_alive);

    let (reporter, health_service) = tonic_health::server::health_reporter();
    ops::set_serving(&reporter, true).await;
    let (reflection_v1, reflection_v1alpha) = ops::reflection()?;

    let mut builder = Server::builder();
    if let Some(tls) = tls_config(&settings.tls)? {
        builder = builder.tls_config(tls)?;
    }
    let listener = tokio::net::TcpListener::bind(settings.server.addr)
        .await
        .map_err(|source| Error::Io {
            what: format!("binding server.addr {}", settings.server.addr),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| Error::Io {
        what: "reading the bound address".into(),
        source,
    })?;
    let router = builder
        .add_service(FlightServiceServer::new(service))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    write_port_file(settings.server.port_file.as_deref(), bound)?;
    health.set_ready(true);
    tracing::info!(addr = %bound, metrics = %ops.addr, tls = settings.tls.cert.is_some(), "Flight SQL server listening");

    let result = router
        .serve_with_incoming_shutdown(incoming, shutdown::signal_received())
        .await;
    health.set_ready(false);
    ops::set_serving(&reporter, false).await;
    refresher.abort();
    ops.task.abort();
    result?;
    tracing::info!("stopped");
    Ok(())
}

/// Writes the bound address atomically, so a reader never sees half of it.
fn write_port_file(path: Option<&std::path::Path>, bound: SocketAddr) -> Result<(), Error> {
    let Some(path) = path else { return Ok(()) };
    let io = |source| Error::Io {
        what: format!("writing server.port_file {}", path.display()),
        source,
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{bound}\n")).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn tls_config(tls: &TlsSection) -> Result<Option<ServerTlsConfig>, Error> {
    let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
        return Ok(None);
    };
    let read = |key: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| Error::Io {
            what: format!("{key} {}", path.display()),
            source,
        })
    };
    let mut config =
        ServerTlsConfig::new().identity(Identity::from_pem(read("tls.cert", cert)?, read("tls.key", key)?));
    if let Some(ca) = &tls.client_ca {
        config = config.client_ca_root(Certificate::from_pem(read("tls.client_ca", ca)?));
    }
    Ok(Some(config))
}

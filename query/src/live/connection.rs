//! The Cassandra session the live tables read through, opened in the background: the server
//! starts and serves its snapshot whether Cassandra is up or not, and the live tables answer
//! UNAVAILABLE until the session is open. Once open, the driver reconnects by itself.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use stockflight_common::cql;

use super::LiveOptions;
use crate::error::Error;

/// The (eventually) open session to the cluster of `cassandra.nodes`.
#[derive(Debug)]
pub struct Connection {
    options: LiveOptions,
    session: RwLock<Option<Arc<Session>>>,
    last_error: Mutex<String>,
}

impl Connection {
    /// A connection not opened yet; [`Connection::spawn_open`] opens it.
    pub fn new(options: LiveOptions) -> Self {
        Self {
            options,
            session: RwLock::new(None),
            last_error: Mutex::new("not connected yet".into()),
        }
    }

    /// The keyspace of the availability table and the change log.
    pub fn keyspace(&self) -> &str {
        &self.options.keyspace
    }

    /// The open session, or UNAVAILABLE naming the nodes and the last connection error.
    pub fn session(&self) -> Result<Arc<Session>, Error> {
        if let Some(session) = self.session.read().expect("session lock").clone() {
            return Ok(session);
        }
        Err(Error::LiveUnavailable(format!(
            "Cassandra at {} is not reachable: {}",
            self.options.nodes.join(","),
            self.last_error.lock().expect("error lock")
        )))
    }

    /// Opens the session in the background, retrying with backoff until it is open.
    pub fn spawn_open(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let open = || this.open();
            let opened = open
                .retry(
                    ExponentialBuilder::default()
                        .with_min_delay(Duration::from_millis(500))
                        .with_max_delay(Duration::from_secs(10))
                        .without_max_times(),
                )
                .notify(|err, wait| {
                    tracing::warn!(%err, ?wait, "live tables: Cassandra not reachable; retrying");
                })
                .await;
            if let Ok(session) = opened {
                *this.session.write().expect("session lock") = Some(session);
                tracing::info!(nodes = %this.options.nodes.join(","), "live tables: Cassandra session open");
            }
        })
    }

    async fn open(&self) -> Result<Arc<Session>, String> {
        let profile = |level| {
            ExecutionProfile::builder()
                .consistency(level)
                .request_timeout(Some(self.options.request_timeout))
                .build()
        };
        let result = SessionBuilder::new()
            .known_nodes(&self.options.nodes)
            .connection_timeout(self.options.request_timeout)
            .default_execution_profile_handle(profile(scylla::statement::Consistency::One).into_handle())
            .build()
            .await;
        let session = match result {
            Ok(session) => session,
            Err(e) => {
                let message = e.to_string();
                *self.last_error.lock().expect("error lock") = message.clone();
                return Err(message);
            }
        };
        // `auto` resolves against the keyspace's replication, known only once connected.
        let level = cql::consistency(&session, &self.options.keyspace, self.options.consistency);
        session
            .get_default_execution_profile_handle()
            .clone()
            .map_to_another_profile(profile(level));
        tracing::info!(consistency = ?level, "live tables: read consistency");
        Ok(Arc::new(session))
    }
}

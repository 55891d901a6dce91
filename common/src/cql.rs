//! Cassandra helpers shared by ingest and batch: which consistency level a keyspace gets.

use scylla::client::session::Session;
use scylla::cluster::metadata::Strategy;

use crate::sections::Consistency;

/// The largest per-datacenter replication factor of `keyspace` as the driver's metadata knows
/// it (1 when the keyspace is unknown or its strategy is not one the driver reads).
pub fn replication_factor(session: &Session, keyspace: &str) -> usize {
    let state = session.get_cluster_state();
    match state.get_keyspace(keyspace).map(|k| &k.strategy) {
        Some(Strategy::SimpleStrategy { replication_factor }) => *replication_factor,
        Some(Strategy::NetworkTopologyStrategy { datacenter_repfactors }) => {
            datacenter_repfactors.values().copied().max().unwrap_or(1)
        }
        _ => 1,
    }
}

/// The driver's level for a configured one, `auto` resolved against `keyspace`'s replication.
pub fn consistency(session: &Session, keyspace: &str, configured: Consistency) -> scylla::statement::Consistency {
    to_driver(configured.resolve(replication_factor(session, keyspace)))
}

/// The driver's level of a resolved one (`auto` taken as one replica).
pub fn to_driver(level: Consistency) -> scylla::statement::Consistency {
    use scylla::statement::Consistency as C;
    match level {
        Consistency::Auto | Consistency::One => C::One,
        Consistency::LocalOne => C::LocalOne,
        Consistency::Two => C::Two,
        Consistency::Three => C::Three,
        Consistency::Quorum => C::Quorum,
        Consistency::LocalQuorum => C::LocalQuorum,
        Consistency::EachQuorum => C::EachQuorum,
        Consistency::All => C::All,
    }
}

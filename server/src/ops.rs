//! Operator-facing gRPC services: health checking and server reflection.

use arrow_flight::flight_service_server::FlightServiceServer;
use tonic_health::server::HealthReporter;

use crate::error::Error;
use crate::flight::service::StockflightFlightSql;

/// Descriptor set of the Flight service (compiled by build.rs) for reflection.
const FLIGHT_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/flight_descriptor.bin"));

/// Reflection services (v1 and v1alpha, which older grpcurl releases ask for).
pub fn reflection() -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    Error,
> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FLIGHT_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = builder()
        .build_v1()
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;
    let v1alpha = builder()
        .build_v1alpha()
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;
    Ok((v1, v1alpha))
}

/// Marks the Flight service serving (or not) in `grpc.health.v1.Health`.
pub async fn set_serving(reporter: &HealthReporter, serving: bool) {
    if serving {
        reporter
            .set_serving::<FlightServiceServer<StockflightFlightSql>>()
            .await;
    } else {
        reporter
            .set_not_serving::<FlightServiceServer<StockflightFlightSql>>()
            .await;
    }
}

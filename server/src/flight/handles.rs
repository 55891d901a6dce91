//! Stateless handles: the prepared-statement handle and the query ticket carry the SQL (and the
//! bound parameters) themselves, so no server-side state has to outlive a request and any
//! replica can redeem them.

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use datafusion::common::{ParamValues, ScalarValue};
use prost::Message;

use crate::error::Error;

/// The content of a prepared-statement handle.
#[derive(Clone, PartialEq, Message)]
pub struct PreparedHandle {
    /// The statement text.
    #[prost(string, tag = "1")]
    pub sql: String,
    /// Bound parameters: one row, Arrow IPC stream; empty when none are bound.
    #[prost(bytes = "vec", tag = "2")]
    pub params: Vec<u8>,
}

/// The content of a query ticket.
#[derive(Clone, PartialEq, Message)]
pub struct QueryTicket {
    /// Id for logs, metrics and CancelFlightInfo.
    #[prost(string, tag = "1")]
    pub query_id: String,
    /// The statement text.
    #[prost(string, tag = "2")]
    pub sql: String,
    /// Bound parameters as in [`PreparedHandle::params`].
    #[prost(bytes = "vec", tag = "3")]
    pub params: Vec<u8>,
    /// The snapshot the query was planned on ([`stockflight_query::Prepared::snapshot`]): whichever
    /// replica redeems the ticket runs it on that snapshot, or refuses; empty: the current one.
    #[prost(string, tag = "4")]
    pub snapshot: String,
}

/// Encodes a message.
pub fn encode(message: &impl Message) -> Bytes {
    message.encode_to_vec().into()
}

/// Decodes a handle or ticket a client sent back.
pub fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, Error> {
    M::decode(bytes).map_err(|e| Error::InvalidArgument(format!("malformed {what}: {e}")))
}

/// Serializes one parameter row.
pub fn encode_params(batch: &RecordBatch) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// The bound parameters as DataFusion values, or `None` when none were bound.
pub fn decode_params(bytes: &[u8]) -> Result<Option<ParamValues>, Error> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let reader = StreamReader::try_new(bytes, None)?;
    let mut values = None;
    for batch in reader {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        values = Some(row_values(&batch)?);
        break;
    }
    Ok(values.map(ParamValues::from))
}

/// The values of the parameter batch's only row; several rows (batch execution) are refused.
pub fn row_values(batch: &RecordBatch) -> Result<Vec<ScalarValue>, Error> {
    if batch.num_rows() != 1 {
        return Err(Error::InvalidArgument(format!(
            "bind exactly one row of parameters (got {}); batch execution is not supported",
            batch.num_rows()
        )));
    }
    batch
        .columns()
        .iter()
        .map(|c| ScalarValue::try_from_array(c, 0).map_err(|e| Error::InvalidArgument(format!("parameter: {e}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn parameters_round_trip() {
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(Int64Array::from(vec![7])) as _),
            ("b", Arc::new(StringArray::from(vec!["x"])) as _),
        ])
        .unwrap();
        let handle = PreparedHandle {
            sql: "SELECT $1, $2".into(),
            params: encode_params(&batch).unwrap(),
        };
        let back: PreparedHandle = decode(&encode(&handle), "handle").unwrap();
        let ParamValues::List(values) = decode_params(&back.params).unwrap().unwrap() else {
            panic!("positional")
        };
        assert_eq!(values.len(), 2);
        assert!(decode::<PreparedHandle>(b"\xff\xff", "handle").is_err());
    }
}

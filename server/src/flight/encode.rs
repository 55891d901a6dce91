//! Result batches to Flight data: the schema first, then each batch in messages of at most
//! [`MAX_MESSAGE_BYTES`]. Unlike arrow-flight's encoder this sends empty batches too: they are the
//! keep-alives that stop proxies from cutting a stream while a long query computes.

use std::pin::Pin;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions};
use arrow_flight::{FlightData, SchemaAsIpc};
use futures::{Stream, StreamExt};
use tonic::Status;

use crate::error::Error;

/// Largest message body we aim for (clients default to a 4 MiB receive limit).
const MAX_MESSAGE_BYTES: usize = 2 * 1024 * 1024;

/// A DoGet response stream.
pub type FlightStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// Encodes `batches` (of `schema`) as Flight data, counting the bytes sent.
pub fn encode(
    schema: SchemaRef,
    batches: impl Stream<Item = Result<RecordBatch, Error>> + Send + 'static,
) -> FlightStream {
    let options = IpcWriteOptions::default();
    let header = FlightData::from(SchemaAsIpc::new(&schema, &options));
    let generator = IpcDataGenerator::default();
    let body = batches.flat_map(move |item| {
        let messages = match item.and_then(|batch| encode_batch(&generator, &batch, &options)) {
            Ok(messages) => messages.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e.into_status())],
        };
        futures::stream::iter(messages)
    });
    Box::pin(futures::stream::iter([Ok(header)]).chain(body).map(|item| {
        if let Ok(data) = &item {
            let bytes = data.data_body.len() + data.data_header.len() + data.app_metadata.len();
            metrics::counter!("stockflight_server_bytes_sent_total").increment(bytes as u64);
        }
        item
    }))
}

fn encode_batch(
    generator: &IpcDataGenerator,
    batch: &RecordBatch,
    options: &IpcWriteOptions,
) -> Result<Vec<FlightData>, Error> {
    let mut tracker = DictionaryTracker::new(false);
    let mut context = IpcWriteContext::default();
    let mut out = Vec::new();
    for slice in split(batch) {
        let (dictionaries, data) = generator.encode(&slice, &mut tracker, options, &mut context)?;
        out.extend(dictionaries.into_iter().map(FlightData::from));
        out.push(FlightData::from(data));
    }
    Ok(out)
}

/// Slices a batch into pieces of about [`MAX_MESSAGE_BYTES`]; an empty batch stays one piece.
fn split(batch: &RecordBatch) -> Vec<RecordBatch> {
    let size = batch.get_array_memory_size();
    let rows = batch.num_rows();
    let pieces = size.div_ceil(MAX_MESSAGE_BYTES).max(1).min(rows.max(1));
    if pieces == 1 {
        return vec![batch.clone()];
    }
    let per_piece = rows.div_ceil(pieces);
    (0..rows)
        .step_by(per_piece)
        .map(|offset| batch.slice(offset, per_piece.min(rows - offset)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use futures::TryStreamExt;
    use std::sync::Arc;

    #[tokio::test]
    async fn empty_batches_are_sent_and_big_ones_split() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let big = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..1_000_000))],
        )
        .unwrap();
        let batches = vec![Ok(RecordBatch::new_empty(schema.clone())), Ok(big)];
        let data: Vec<FlightData> = encode(schema, futures::stream::iter(batches))
            .try_collect()
            .await
            .unwrap();
        // schema + empty batch + 8 MB split into >= 4 messages
        assert!(data.len() >= 6, "{}", data.len());
        let decoded: Vec<RecordBatch> = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
            futures::stream::iter(data.into_iter().map(Ok)),
        )
        .try_collect()
        .await
        .unwrap();
        assert_eq!(decoded[0].num_rows(), 0);
        assert_eq!(decoded.iter().map(|b| b.num_rows()).sum::<usize>(), 1_000_000);
    }
}

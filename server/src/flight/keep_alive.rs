//! Keep-alive batches: while a query computes and sends nothing, an empty batch every
//! `server.keep_alive_secs` stops proxies and load balancers from cutting the idle stream.

use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::{Stream, StreamExt};
use stockflight_query::BatchStream;

use crate::error::Error;

/// `batches`, with an empty batch of `schema` after every `every` without one.
pub fn keep_alive(
    schema: SchemaRef,
    batches: BatchStream,
    every: Duration,
) -> impl Stream<Item = Result<RecordBatch, Error>> + Send + 'static {
    futures::stream::unfold(Some(batches), move |state| {
        let schema = schema.clone();
        async move {
            let mut batches = state?;
            tokio::select! {
                biased;
                next = batches.next() => next.map(|item| (item.map_err(Error::from), Some(batches))),
                () = tokio::time::sleep(every) => Some((Ok(RecordBatch::new_empty(schema)), Some(batches))),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use futures::TryStreamExt;
    use std::sync::Arc;

    #[tokio::test]
    async fn an_idle_query_sends_empty_batches_then_its_rows() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
        let slow = futures::stream::once(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(batch)
        });
        let got: Vec<RecordBatch> = keep_alive(schema, Box::pin(slow), Duration::from_millis(50))
            .try_collect()
            .await
            .unwrap();
        let rows: Vec<usize> = got.iter().map(RecordBatch::num_rows).collect();
        // A keep-alive every 50 ms while the query is silent for 300 ms, then its rows, then the end.
        let (last, before) = rows.split_last().unwrap();
        assert_eq!(*last, 2, "{rows:?}");
        assert!(before.len() >= 3 && before.iter().all(|&n| n == 0), "{rows:?}");
    }
}

//! The full-scan guard: a query on `availability_live` reads Cassandra, the system of record,
//! directly; one that would read all of it is refused unless it names a limit the operator
//! allows (`live.max_scan_rows`), so no BI user scans the table by accident.

use crate::error::Error;

/// How a live scan would read Cassandra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanShape {
    /// The partition key is restricted (`item_id = …`, `item_id IN (…)`): the read touches
    /// only those partitions.
    pub partition_restricted: bool,
    /// Filters handed to the scan (key filters CQL cannot evaluate are applied over it).
    pub filters: usize,
    /// The row limit pushed into the scan, if any.
    pub limit: Option<usize>,
}

/// Allows the scan, or refuses it with [`Error::FullScan`] (gRPC INVALID_ARGUMENT) saying how to
/// narrow it. Without a partition restriction a scan is allowed only with no other filter (one
/// would be applied over an unbounded read) and a limit of at most `max_scan_rows` rows, which
/// becomes the CQL statement's `LIMIT`.
pub fn check(table: &str, shape: ScanShape, max_scan_rows: u64) -> Result<(), Error> {
    if shape.partition_restricted {
        return Ok(());
    }
    let bounded = shape.filters == 0 && shape.limit.is_some_and(|l| l as u64 <= max_scan_rows);
    if bounded {
        return Ok(());
    }
    let allowance = if max_scan_rows == 0 {
        "(scans without a key are off: live.max_scan_rows = 0)".to_string()
    } else if shape.filters == 0 {
        format!("or add LIMIT n with n <= {max_scan_rows} (live.max_scan_rows)")
    } else {
        format!(
            "(LIMIT n <= {max_scan_rows} (live.max_scan_rows) only bounds a query with no other filter, \
             since one applied over the scan could read every row to fill it)"
        )
    };
    Err(Error::FullScan(format!(
        "{table} reads Cassandra, the system of record, and this query would scan the whole table: \
         filter on item_id (item_id = '…' or item_id IN ('…', …), optionally with node_id) {allowance}; \
         for questions over all items use the snapshot tables or availability_current"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    fn shape(partition_restricted: bool, filters: usize, limit: Option<usize>) -> ScanShape {
        ScanShape {
            partition_restricted,
            filters,
            limit,
        }
    }

    #[test]
    fn key_lookups_pass_and_scans_need_a_small_limit() {
        assert!(check("t", shape(true, 2, None), 0).is_ok());
        assert!(check("t", shape(true, 1, Some(5)), 100).is_ok());
        assert!(check("t", shape(false, 0, Some(100)), 100).is_ok());
        for refused in [
            shape(false, 0, None),
            shape(false, 0, Some(101)),
            shape(false, 1, Some(10)),
            shape(false, 1, None),
        ] {
            let err = check("availability_live", refused, 100).unwrap_err();
            assert_eq!(err.kind(), Kind::InvalidArgument, "{refused:?}");
            let text = err.to_string();
            assert!(
                text.contains("item_id") && text.contains("live.max_scan_rows"),
                "{text}"
            );
        }
        let off = check("t", shape(false, 0, Some(1)), 0).unwrap_err().to_string();
        assert!(off.contains("max_scan_rows = 0"), "{off}");
    }
}

//! Verified lookups: joins of a fact table with a reference table that the fact table's own
//! columns already answer ([`stockflight_proto::layout::DENORMALIZED`] declares them; each is
//! checked against the served data when a snapshot loads, column by column).

use std::collections::HashMap;

use datafusion::common::Column;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;
use stockflight_proto::layout::Denormalized;

/// A join `table JOIN reference ON table.key.0 = reference.key.1` that finds exactly one
/// reference row for every row of `table`, and the reference columns equal to a copy in `table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The fact table.
    pub table: String,
    /// The reference table.
    pub reference: String,
    /// (fact column, reference key column).
    pub key: (String, String),
    /// Reference column -> its verified copy in the fact table (the key included).
    pub columns: HashMap<String, String>,
}

impl Lookup {
    /// `expr` over the reference table's columns, over the fact table's instead; `None` when
    /// it uses a column without a verified copy.
    pub fn to_fact(&self, expr: &Expr) -> Option<Expr> {
        let mut missing = false;
        let out = expr
            .clone()
            .transform_up(|e| match e {
                Expr::Column(c) => match self.columns.get(&c.name) {
                    Some(copy) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(copy)))),
                    None => {
                        missing = true;
                        Ok(Transformed::no(Expr::Column(c)))
                    }
                },
                other => Ok(Transformed::no(other)),
            })
            .ok()?
            .data;
        (!missing).then_some(out)
    }
}

/// The declared lookups whose fact and reference tables `ctx` serves, each with the columns
/// whose copies hold for every row; a lookup whose key is not unique in the reference table, or
/// misses a fact row, is dropped whole.
pub async fn verify(ctx: &SessionContext, declared: &[Denormalized]) -> Vec<Lookup> {
    let mut verified = Vec::new();
    for d in declared {
        match verify_one(ctx, d).await {
            Ok(Some(lookup)) => {
                tracing::info!(
                    table = d.table,
                    reference = d.reference,
                    columns = lookup.columns.len(),
                    "lookup verified"
                );
                verified.push(lookup);
            }
            Ok(None) => tracing::info!(
                table = d.table,
                reference = d.reference,
                "lookup does not hold; joins run as joins"
            ),
            Err(e) => {
                tracing::warn!(table = d.table, reference = d.reference, %e, "lookup not checked; joins run as joins")
            }
        }
    }
    verified
}

async fn verify_one(ctx: &SessionContext, d: &Denormalized) -> datafusion::error::Result<Option<Lookup>> {
    let (Ok(fact), Ok(reference)) = (ctx.table_provider(d.table).await, ctx.table_provider(d.reference).await) else {
        return Ok(None);
    };
    let has = |schema: &arrow::datatypes::SchemaRef, c: &str| schema.field_with_name(c).is_ok();
    let (fact_key, reference_key) = d.key;
    if !has(&fact.schema(), fact_key) || !has(&reference.schema(), reference_key) {
        return Ok(None);
    }
    let pairs: Vec<(&str, &str)> = d
        .columns
        .iter()
        .copied()
        .filter(|(r, f)| has(&reference.schema(), r) && has(&fact.schema(), f))
        .collect();
    // One pass: duplicate keys in the reference table, fact rows without a reference row, and
    // per column the rows whose copy differs (NULL = NULL counts as equal).
    let unique = format!(
        "SELECT count(*) - count(DISTINCT \"{reference_key}\") FROM \"{}\"",
        d.reference
    );
    let mut checks = vec![format!(
        "sum(CASE WHEN r.\"{reference_key}\" IS NULL THEN 1 ELSE 0 END)"
    )];
    checks.extend(
        pairs
            .iter()
            .map(|(r, f)| format!("sum(CASE WHEN f.\"{f}\" IS DISTINCT FROM r.\"{r}\" THEN 1 ELSE 0 END)")),
    );
    let differ = format!(
        "SELECT {} FROM \"{}\" f LEFT JOIN \"{}\" r ON f.\"{fact_key}\" = r.\"{reference_key}\"",
        checks.join(", "),
        d.table,
        d.reference
    );
    if count(ctx, &unique).await?.first().copied().flatten().unwrap_or(1) != 0 {
        return Ok(None);
    }
    let counts = count(ctx, &differ).await?;
    if counts.first().copied().flatten().unwrap_or(0) != 0 {
        return Ok(None);
    }
    let mut columns: HashMap<String, String> = HashMap::from([(reference_key.to_string(), fact_key.to_string())]);
    for ((r, f), differing) in pairs.iter().zip(counts.iter().skip(1)) {
        if differing.unwrap_or(0) == 0 {
            columns.insert(r.to_string(), f.to_string());
        }
    }
    Ok(Some(Lookup {
        table: d.table.to_string(),
        reference: d.reference.to_string(),
        key: (fact_key.to_string(), reference_key.to_string()),
        columns,
    }))
}

/// The single row of `sql`, every column as an i64 (NULL: `None`).
async fn count(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<Vec<Option<i64>>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(Vec::new());
    };
    batch
        .columns()
        .iter()
        .map(|c| {
            let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Int64)?;
            let c = c
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .expect("cast to Int64");
            Ok(arrow::array::Array::is_valid(c, 0).then(|| c.value(0)))
        })
        .collect()
}

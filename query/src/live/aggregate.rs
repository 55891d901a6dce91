//! Aggregates over `availability_current` at the cost of the snapshot's own aggregate plus the
//! changes: a GROUP BY whose every aggregate can be undone (`count`, integer `sum` and `avg`)
//! is answered as
//!
//! ```text
//!   the aggregate over availability_snapshot          (held rows, or a cube: see `navigate`)
//! − the aggregate over the snapshot rows a change replaced
//! + the aggregate over the changed rows as they are now
//! ```
//!
//! added up per group, instead of over a scan of every snapshot row that drops the replaced
//! ones. The two change tables ([`super::changes`]) hold only the changed pairs, so the extra
//! cost follows the number of changes since the snapshot, never the table's size.
//!
//! Exactness: the sums are of integers (exact in any order); a group is in the answer when its
//! net row count is positive (a group every row of which moved elsewhere is gone, as in the
//! scan); a `sum` is NULL when its net count of non-NULL values is 0, as over the rows. Only
//! columns the change rows reproduce exactly may be read ([`Joiner::reproduces`]); anything
//! else (`min`, `max`, `DISTINCT`, grouping sets, float sums, a join) keeps the plain plan.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, ExprSchema, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::error::Result;
use datafusion::functions::core::expr_fn::nullif;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    Aggregate, Expr, ExprFunctionExt, ExprSchemable, LogicalPlan, LogicalPlanBuilder, cast, lit, when,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use super::current::CURRENT_TABLE;
use super::rows::Joiner;
use super::snapshot_rows::SNAPSHOT_TABLE;
use crate::navigate::resolve::{Base, Catalog, Source};
use crate::navigate::rewrite::{self, Agg, Func, Shape, is_rows};

/// The rule, for one snapshot's `availability_current`.
#[derive(Debug)]
pub struct CurrentAggregates {
    /// `availability_current`, as the only fact a rewritten aggregate may read.
    facts: HashMap<String, Arc<dyn TableProvider>>,
    /// Its columns (`None` if they do not make a DataFusion schema: nothing is rewritten).
    schema: Option<DFSchema>,
    snapshot: Arc<dyn TableProvider>,
    changed: Arc<dyn TableProvider>,
    replaced: Arc<dyn TableProvider>,
    joiner: Joiner,
}

impl CurrentAggregates {
    /// Rewrites aggregates over `current` (the registered `availability_current`) into ones over
    /// `snapshot` (the registered `availability_snapshot`) and the change tables.
    pub fn new(
        current: Arc<dyn TableProvider>,
        snapshot: Arc<dyn TableProvider>,
        changed: Arc<dyn TableProvider>,
        replaced: Arc<dyn TableProvider>,
        joiner: Joiner,
    ) -> Self {
        Self {
            schema: DFSchema::try_from(current.schema().as_ref().clone()).ok(),
            facts: HashMap::from([(CURRENT_TABLE.to_string(), current)]),
            snapshot,
            changed,
            replaced,
            joiner,
        }
    }

    fn rewrite_aggregate(&self, plan: &LogicalPlan) -> Option<LogicalPlan> {
        let LogicalPlan::Aggregate(aggregate) = plan else {
            return None;
        };
        if aggregate.group_expr.iter().any(|g| matches!(g, Expr::GroupingSet(_))) {
            return None;
        }
        let schema = self.schema.as_ref()?;
        let base: Base = Catalog {
            facts: &self.facts,
            lookups: &[],
        }
        .base(&aggregate.input)?;
        if !matches!(base.source, Source::Fact(..)) {
            return None;
        }
        let shape = rewrite::shape(aggregate, &base, schema)?;
        if !shape.dims.iter().all(|c| self.joiner.reproduces(c))
            || !shape
                .aggs
                .iter()
                .flat_map(|a| a.arg.column_refs())
                .all(|c| self.joiner.reproduces(&c.name))
        {
            return None;
        }
        let rewritten = self.plan(&shape, aggregate, schema)?;
        metrics::counter!("stockflight_server_aggregate_rewrites_total", "to" => "snapshot_and_changes").increment(1);
        Some(rewritten)
    }

    fn plan(&self, shape: &Shape, original: &Aggregate, schema: &DFSchema) -> Option<LogicalPlan> {
        // Per aggregate, its partials (summed over the branches) and how they finish.
        let mut partials: Vec<Expr> = Vec::new();
        let mut finishes = Vec::new();
        for a in &shape.aggs {
            let (parts, finish) = partials_of(a, schema)?;
            finishes.push((finish, partials.len()));
            partials.extend(parts);
        }
        // The rows of each group: it is in the answer when there are any.
        let rows_at = partials.len();
        partials.push(count(lit(1i64)));

        let group_types: Vec<DataType> = (0..shape.groups.len())
            .map(|i| original.schema.field(i).data_type().clone())
            .collect();
        let branch = |name: &str, table: &Arc<dyn TableProvider>, sign: i64| -> Option<LogicalPlan> {
            let mut builder = LogicalPlanBuilder::scan(name, provider_as_source(table.clone()), None).ok()?;
            if let Some(p) = conjunction(shape.predicates.clone()) {
                builder = builder.filter(p).ok()?;
            }
            let aggs: Vec<Expr> = partials
                .iter()
                .enumerate()
                .map(|(i, p)| p.clone().alias(format!("__p{i}")))
                .collect();
            let aggregated = builder.aggregate(shape.groups.clone(), aggs).ok()?.build().ok()?;
            let out = aggregated.schema().clone();
            let column = |i: usize| Expr::Column(Column::from(out.qualified_field(i)));
            let groups = shape.groups.len();
            let mut exprs: Vec<Expr> = (0..groups)
                .map(|i| cast(column(i), group_types[i].clone()).alias(format!("__g{i}")))
                .collect();
            exprs.extend((0..partials.len()).map(|i| {
                let value = cast(column(groups + i), DataType::Int64);
                let value = if sign < 0 { lit(-1i64) * value } else { value };
                value.alias(format!("__p{i}"))
            }));
            LogicalPlanBuilder::from(aggregated).project(exprs).ok()?.build().ok()
        };
        let union = LogicalPlanBuilder::from(branch(SNAPSHOT_TABLE, &self.snapshot, 1)?)
            .union(branch("availability_current__replaced", &self.replaced, -1)?)
            .ok()?
            .union(branch("availability_current__changed", &self.changed, 1)?)
            .ok()?
            .build()
            .ok()?;

        let groups: Vec<Expr> = (0..shape.groups.len())
            .map(|i| Expr::Column(Column::new_unqualified(format!("__g{i}"))))
            .collect();
        let sums: Vec<Expr> = (0..partials.len())
            .map(|i| sum(Expr::Column(Column::new_unqualified(format!("__p{i}")))).alias(format!("__s{i}")))
            .collect();
        let mut builder = LogicalPlanBuilder::from(union).aggregate(groups, sums).ok()?;
        let total = |i: usize| Expr::Column(Column::new_unqualified(format!("__s{i}")));
        if !shape.groups.is_empty() {
            builder = builder.filter(total(rows_at).gt(lit(0i64))).ok()?;
        }
        let summed = builder.build().ok()?;

        let original_schema = original.schema.clone();
        let mut exprs = Vec::new();
        for i in 0..shape.groups.len() {
            let (qualifier, field) = original_schema.qualified_field(i);
            exprs.push(
                Expr::Column(Column::new_unqualified(format!("__g{i}")))
                    .alias_qualified(qualifier.cloned(), field.name()),
            );
        }
        for (k, (finish, at)) in finishes.iter().enumerate() {
            // CASEs, not coalesce: see `rewrite::zero_if_null`.
            let zero = || lit(ScalarValue::Int64(Some(0)));
            let e = match finish {
                Finish::Count => rewrite::zero_if_null(total(*at))?,
                Finish::Sum => when(
                    total(at + 1).is_null().or(total(at + 1).eq(zero())),
                    lit(ScalarValue::Int64(None)),
                )
                .otherwise(total(*at))
                .ok()?,
                Finish::Avg => {
                    cast(total(*at), DataType::Float64) / cast(nullif(total(at + 1), zero()), DataType::Float64)
                }
            };
            let (qualifier, field) = original_schema.qualified_field(shape.groups.len() + k);
            exprs.push(e.alias_qualified(qualifier.cloned(), field.name()));
        }
        rewrite::project_like(exprs, summed, &original_schema)
    }
}

/// How an aggregate is finished from its summed partials.
enum Finish {
    /// A count: its one partial (0 when no branch had the group).
    Count,
    /// A sum: its partial sum, NULL when its count of values is 0.
    Sum,
    /// An average: the partial sum over the partial count.
    Avg,
}

/// The partial aggregates one aggregate is summed from, or `None` if it cannot be undone.
fn partials_of(a: &Agg, schema: &DFSchema) -> Option<(Vec<Expr>, Finish)> {
    let p = &a.original.params;
    if p.distinct {
        return None;
    }
    let filtered = |e: Expr| -> Option<Expr> {
        match &p.filter {
            Some(f) => e.filter(f.as_ref().clone()).build().ok(),
            None => Some(e),
        }
    };
    if is_rows(a) {
        return Some((vec![filtered(count(lit(1i64)))?], Finish::Count));
    }
    // avg's argument is cast to a double by DataFusion; the sum is over the integer under it.
    let arg = match (&a.func, &a.arg) {
        (Func::Avg, Expr::Cast(c)) => c.expr.as_ref().clone(),
        (_, e) => e.clone(),
    };
    let signed = matches!(
        arg.get_type(schema as &dyn ExprSchema).ok()?,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
    );
    let count_of = || filtered(count(arg.clone()));
    let sum_of = || filtered(sum(cast(arg.clone(), DataType::Int64)));
    match a.func {
        Func::Count => Some((vec![count_of()?], Finish::Count)),
        Func::Sum if signed => Some((vec![sum_of()?, count_of()?], Finish::Sum)),
        Func::Avg if signed => Some((vec![sum_of()?, count_of()?], Finish::Avg)),
        _ => None,
    }
}

impl OptimizerRule for CurrentAggregates {
    fn name(&self) -> &str {
        "stockflight_current_aggregates"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        Ok(match self.rewrite_aggregate(&plan) {
            Some(rewritten) => Transformed::yes(rewritten),
            None => Transformed::no(plan),
        })
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;

//! One aggregate, rewritten over a cube (or over the fact table alone, when only lookups were
//! seen through), returning exactly what the original returns: the same rows, column names and
//! types. Only aggregates whose answer from a cube is exact are rewritten:
//!
//! | original, over fact rows | over cube cells |
//! |---|---|
//! | `count(*)` | `coalesce(sum(__rows), 0)` |
//! | `count(c)`, `sum(c)` (integer `c`), `min(c)`, `max(c)` | `coalesce(sum(__count_c), 0)`, `sum(__sum_c)`, `min(__min_c)`, `max(__max_c)` |
//! | `avg(c)` (integer `c`) | `sum(__sum_c)` / `sum(__count_c)` as doubles |
//! | `count(e)`, `sum(e)` (integer), `min(e)`, `max(e)`, `avg(e)` of an expression of dimensions | weighted by `__rows` |
//! | any `DISTINCT` aggregate of dimensions | the same over the cells |
//!
//! `FILTER (WHERE …)` clauses, `WHERE` predicates and grouping expressions (grouping sets,
//! roll-ups and cubes included) may use any deterministic expression of dimension columns. Sums
//! of floating-point columns are never rewritten: another order of additions could change the
//! last bits of the answer.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::{Column, DFSchema, ExprSchema, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::functions_aggregate::expr_fn::{max, min, sum};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    Aggregate, Expr, ExprFunctionExt, ExprSchemable, LogicalPlan, LogicalPlanBuilder, Projection, cast, lit, when,
};

use super::cube::{Cube, ROWS, measure, orderable, summable};
use super::resolve::{Base, substitute};

/// The aggregate's functions this module understands, by the names DataFusion registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

impl Func {
    fn of(f: &AggregateFunction) -> Option<Self> {
        match f.func.name() {
            "count" => Some(Self::Count),
            "sum" => Some(Self::Sum),
            "min" => Some(Self::Min),
            "max" => Some(Self::Max),
            "avg" => Some(Self::Avg),
            _ => None,
        }
    }
}

/// An aggregate of the original, over the fact table's columns.
pub(crate) struct Agg {
    pub(crate) original: AggregateFunction,
    pub(crate) func: Func,
    pub(crate) arg: Expr,
}

/// The aggregate over the fact table's columns: grouping expressions, aggregates, predicates.
pub struct Shape {
    pub(crate) groups: Vec<Expr>,
    pub(crate) aggs: Vec<Agg>,
    pub(crate) predicates: Vec<Expr>,
    /// Columns a cube must keep as dimensions.
    pub dims: BTreeSet<String>,
}

/// `aggregate` over `base` (its input, resolved) as a [`Shape`]; `None` when an expression
/// cannot be expressed over the fact's columns or an aggregate is not one of those above.
pub fn shape(aggregate: &Aggregate, base: &Base, fact_schema: &DFSchema) -> Option<Shape> {
    let input = aggregate.input.schema();
    let groups = aggregate
        .group_expr
        .iter()
        .map(|g| substitute(g, input, &base.columns))
        .collect::<Option<Vec<_>>>()?;
    let mut aggs = Vec::new();
    for e in &aggregate.aggr_expr {
        let Expr::AggregateFunction(f) = e.clone().unalias_nested().data else {
            return None;
        };
        let func = Func::of(&f)?;
        let p = &f.params;
        if p.args.len() != 1 || !p.order_by.is_empty() || p.null_treatment.is_some() {
            return None;
        }
        let arg = substitute(&p.args[0], input, &base.columns)?;
        let filter = match &p.filter {
            Some(f) => Some(Box::new(substitute(f, input, &base.columns)?)),
            None => None,
        };
        let original = AggregateFunction::new_udf(f.func.clone(), vec![arg.clone()], p.distinct, filter, vec![], None);
        aggs.push(Agg { original, func, arg });
    }
    let predicates = base.predicates.clone();
    // Dimensions: whatever groups, filters, or is aggregated other than as a plain column.
    let mut dims = BTreeSet::new();
    let mut add = |e: &Expr| {
        for c in e.column_refs() {
            dims.insert(c.name.clone());
        }
    };
    groups.iter().for_each(&mut add);
    predicates.iter().for_each(&mut add);
    for a in &aggs {
        if let Some(f) = &a.original.params.filter {
            add(f);
        }
        if a.original.params.distinct || measure_column(a, fact_schema).is_none() && !is_rows(a) {
            add(&a.arg);
        }
    }
    Some(Shape {
        groups,
        aggs,
        predicates,
        dims,
    })
}

/// `count(<non-NULL literal>)`: the rows.
pub(crate) fn is_rows(a: &Agg) -> bool {
    a.func == Func::Count && !a.original.params.distinct && matches!(&a.arg, Expr::Literal(v, _) if !v.is_null())
}

/// The plain column an aggregate reads (through the cast `avg` adds), with its type.
fn measure_column(a: &Agg, schema: &DFSchema) -> Option<(String, DataType)> {
    let inner = match (&a.func, &a.arg) {
        (Func::Avg, Expr::Cast(c)) => c.expr.as_ref(),
        (_, e) => e,
    };
    let Expr::Column(c) = inner else { return None };
    let ty = schema.field_with_unqualified_name(&c.name).ok()?.data_type().clone();
    Some((c.name.clone(), ty))
}

/// The aggregate as a plan over `table` (named `name`): over a cube's cells when `cube` is
/// given, else over the fact rows as they are. `original` is the aggregate node being replaced,
/// whose output (names and types) the result reproduces.
pub fn plan(
    shape: &Shape,
    original: &Aggregate,
    name: &str,
    table: Arc<dyn TableProvider>,
    cube: Option<&Cube>,
    fact_schema: &DFSchema,
) -> Option<LogicalPlan> {
    let mut builder = LogicalPlanBuilder::scan(name, provider_as_source(table), None).ok()?;
    if let Some(p) = conjunction(shape.predicates.clone()) {
        builder = builder.filter(p).ok()?;
    }
    let mut inner = Vec::new();
    let mut outer = Vec::new();
    for a in &shape.aggs {
        let (aggs, finish) = match cube {
            None => (vec![Expr::AggregateFunction(a.original.clone())], Finish::Same),
            Some(cube) => over_cube(a, cube, fact_schema)?,
        };
        let first = inner.len();
        for (i, e) in aggs.into_iter().enumerate() {
            inner.push(e.alias(format!("__a{}", first + i)));
        }
        outer.push((finish, first));
    }
    let inner_count = inner.len();
    let aggregated = builder.aggregate(shape.groups.clone(), inner).ok()?.build().ok()?;
    let schema = aggregated.schema().clone();
    let groups = schema.fields().len() - inner_count;
    let original_schema = original.schema.clone();
    if groups + shape.aggs.len() != original_schema.fields().len() {
        return None;
    }
    let column = |i: usize| Expr::Column(Column::from(schema.qualified_field(i)));
    let mut exprs = Vec::new();
    for i in 0..groups {
        let (qualifier, field) = original_schema.qualified_field(i);
        exprs.push(column(i).alias_qualified(qualifier.cloned(), field.name()));
    }
    for (k, (finish, first)) in outer.iter().enumerate() {
        let at = groups + first;
        let e = match finish {
            Finish::Same => column(at),
            Finish::ZeroIfNull => zero_if_null(column(at))?,
            Finish::Ratio => cast(column(at), DataType::Float64) / cast(column(at + 1), DataType::Float64),
        };
        let (qualifier, field) = original_schema.qualified_field(groups + k);
        exprs.push(e.alias_qualified(qualifier.cloned(), field.name()));
    }
    project_like(exprs, aggregated, &original_schema)
}

/// `exprs` over `input`, when that has the names and types of `original` (what a rewrite must
/// keep); `None` otherwise, and the rewrite is not used.
pub(crate) fn project_like(exprs: Vec<Expr>, input: LogicalPlan, original: &DFSchema) -> Option<LogicalPlan> {
    let rewritten = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input)).ok()?);
    let same = rewritten.schema().fields().len() == original.fields().len()
        && rewritten
            .schema()
            .iter()
            .zip(original.iter())
            .all(|((q1, f1), (q2, f2))| q1 == q2 && f1.name() == f2.name() && f1.data_type() == f2.data_type());
    same.then_some(rewritten)
}

/// `e`, or 0 where it is NULL: a count no row contributed to. A CASE, not `coalesce`: these
/// rules may run after DataFusion's last simplification pass, and `coalesce` only executes once
/// simplified into a CASE.
pub(crate) fn zero_if_null(e: Expr) -> Option<Expr> {
    when(e.clone().is_null(), lit(ScalarValue::Int64(Some(0))))
        .otherwise(e)
        .ok()
}

/// How the outer projection finishes an aggregate from the inner one(s).
enum Finish {
    /// As it is.
    Same,
    /// NULL (no cell) reads 0: a count.
    ZeroIfNull,
    /// The first over the second, as doubles: an average.
    Ratio,
}

/// One aggregate over a cube's cells: the inner aggregate(s) and how to finish them.
fn over_cube(a: &Agg, cube: &Cube, fact_schema: &DFSchema) -> Option<(Vec<Expr>, Finish)> {
    let p = &a.original.params;
    let filtered = |e: Expr| -> Option<Expr> {
        match &p.filter {
            Some(f) => e.filter(f.as_ref().clone()).build().ok(),
            None => Some(e),
        }
    };
    let has = |column: &str| cube.schema.field_with_name(column).is_ok();
    let rows = || Expr::Column(Column::new_unqualified(ROWS));
    if p.distinct {
        // The distinct values of dimensions are the same over cells as over rows.
        return Some((vec![Expr::AggregateFunction(a.original.clone())], Finish::Same));
    }
    if is_rows(a) {
        return Some((vec![filtered(sum(rows()))?], Finish::ZeroIfNull));
    }
    if let Some((column, ty)) = measure_column(a, fact_schema)
        && !cube.dims.contains(&column)
    {
        let m = |kind: &str| {
            let name = measure(kind, &column);
            has(&name).then(|| Expr::Column(Column::new_unqualified(name)))
        };
        return match a.func {
            Func::Count => Some((vec![filtered(sum(m("count")?))?], Finish::ZeroIfNull)),
            Func::Sum if summable(&ty) => Some((vec![filtered(sum(m("sum")?))?], Finish::Same)),
            Func::Min if orderable(&ty) => Some((vec![filtered(min(m("min")?))?], Finish::Same)),
            Func::Max if orderable(&ty) => Some((vec![filtered(max(m("max")?))?], Finish::Same)),
            Func::Avg if ty.is_integer() => Some((
                vec![filtered(sum(m("sum")?))?, filtered(sum(m("count")?))?],
                Finish::Ratio,
            )),
            _ => None,
        };
    }
    // An expression of dimensions: every cell stands for `__rows` equal rows.
    let arg = match (&a.func, &a.arg) {
        (Func::Avg, Expr::Cast(c)) => c.expr.as_ref().clone(),
        (_, e) => e.clone(),
    };
    if !arg.column_refs().iter().all(|c| cube.dims.contains(&c.name)) {
        return None;
    }
    let ty = arg.get_type(fact_schema as &dyn ExprSchema).ok()?;
    let weighted_rows = || when(arg.clone().is_not_null(), rows()).otherwise(lit(0i64));
    match a.func {
        Func::Count => Some((vec![filtered(sum(weighted_rows().ok()?))?], Finish::ZeroIfNull)),
        Func::Sum if ty.is_integer() => Some((
            vec![filtered(sum(cast(arg.clone(), DataType::Int64) * rows()))?],
            Finish::Same,
        ))
        .filter(|_| matches!(ty, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64)),
        Func::Min => Some((vec![filtered(min(arg))?], Finish::Same)),
        Func::Max => Some((vec![filtered(max(arg))?], Finish::Same)),
        Func::Avg if ty.is_integer() => Some((
            vec![
                filtered(sum(cast(arg.clone(), DataType::Int64) * rows()))?,
                filtered(sum(weighted_rows().ok()?))?,
            ],
            Finish::Ratio,
        ))
        .filter(|_| matches!(ty, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64)),
        _ => None,
    }
}

//! SQL text to a DataFusion plan, refusing anything that is not a read.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Mutex;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, cast, col};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::ast::{Expr, Value, ValueWithSpan, visit_expressions_mut, visit_relations};

use crate::error::Error;

/// A planned query: its checked logical plan (not yet optimized) and the schema clients receive.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The plan, analyzed, with output types the drivers map.
    pub plan: LogicalPlan,
    /// Placeholders (`$1`, `?`) and their inferred types, in position order.
    pub parameters: Parameters,
}

impl Planned {
    /// The result schema as Arrow's.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema().inner().clone()
    }

    /// The parameter schema a prepared statement advertises (`$1`, `$2`, … ; Null when unknown).
    pub fn parameter_schema(&self) -> Schema {
        Schema::new(
            self.parameters
                .iter()
                .map(|(name, ty)| {
                    let ty = ty.clone().unwrap_or(DataType::Null);
                    Field::new(name, client_type(&ty).unwrap_or(ty), true)
                })
                .collect::<Vec<_>>(),
        )
    }
}

/// Most statements a [`PlanCache`] keeps before it starts over.
const PLAN_CACHE_ENTRIES: usize = 512;

/// Checked logical plans of recent statements on one snapshot: dashboards send the same SQL
/// again and again, and each query is planned for its schema before it runs. Plans are kept
/// unoptimized, so time functions and the optimizer see each run afresh.
#[derive(Debug, Default)]
pub struct PlanCache(Mutex<HashMap<String, Planned>>);

/// Placeholders and their inferred types, in position order.
pub type Parameters = Vec<(String, Option<DataType>)>;

/// What identifies a statement in the plan and result caches: its SQL text and the type and
/// value of each bound parameter.
pub fn statement_key(sql: &str, params: &Option<ParamValues>) -> String {
    format!("{sql}\u{0}{params:?}")
}

/// Like [`plan_sql`], reusing a plan from `cache` for the same [`statement_key`]. A kept plan
/// costs no session state at all: the planning one is taken from `ctx` only on a miss.
pub async fn plan_cached(
    cache: &PlanCache,
    ctx: &SessionContext,
    sql: &str,
    params: Option<ParamValues>,
) -> Result<Planned, Error> {
    let key = statement_key(sql, &params);
    if let Some(planned) = cache.0.lock().expect("plan cache lock").get(&key).cloned() {
        return Ok(planned);
    }
    let planned = plan_sql(&ctx.state(), sql, params).await?;
    if crate::live::reads_live(&planned.plan) {
        // Live tables are planned afresh every time: nothing about them is kept across runs.
        return Ok(planned);
    }
    let mut entries = cache.0.lock().expect("plan cache lock");
    if entries.len() >= PLAN_CACHE_ENTRIES {
        entries.clear();
    }
    entries.insert(key, planned.clone());
    Ok(planned)
}

/// Parses, checks and plans `sql` in `state`, binding `params` when given.
pub async fn plan_sql(state: &SessionState, sql: &str, params: Option<ParamValues>) -> Result<Planned, Error> {
    let dialect = state.config().options().sql_parser.dialect;
    let mut statement = state
        .sql_to_statement(sql, &dialect)
        .map_err(|e| Error::Sql(root_message(&e)))?;
    check_read_only(&statement)?;
    check_no_paths(&statement)?;
    number_placeholders(&mut statement);
    let mut plan = state.statement_to_plan(statement).await?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| Error::ReadOnly(root_message(&e)))?;
    let parameters = ordered_parameters(&plan)?;
    if let Some(params) = params {
        plan = plan.with_param_values(params)?;
    }
    // The schema clients are told is the analyzed plan's: before type coercion, `CASE WHEN …
    // THEN 1 ELSE 2.5 END` reads Int64 while it computes Float64. A plan with placeholders still
    // unbound may not analyze yet; its announced types are then the planner's.
    if let Ok(analyzed) = state
        .analyzer()
        .execute_and_check(plan.clone(), state.config_options(), |_, _| {})
    {
        plan = analyzed;
    }
    Ok(Planned {
        plan: normalize_types(plan)?,
        parameters,
    })
}

/// Rows all the tables `plan` scans hold together, when every one of them knows its count (held
/// tables and cubes do; Parquet listings and live tables do not). A plan that scans no table
/// reads 0 rows.
pub fn input_rows(plan: &LogicalPlan) -> Option<usize> {
    let mut total = Some(0usize);
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let rows = source_as_provider(&scan.source)
                .ok()
                .and_then(|provider| provider.statistics())
                .and_then(|stats| stats.num_rows.get_value().copied());
            total = total.zip(rows).map(|(a, b)| a.saturating_add(b));
            if total.is_none() {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    total
}

/// Refuses every statement but queries, SHOW and EXPLAIN of those, before planning.
fn check_read_only(statement: &DfStatement) -> Result<(), Error> {
    match statement {
        DfStatement::Statement(inner) => match inner.as_ref() {
            SqlStatement::Query(_)
            | SqlStatement::ShowTables { .. }
            | SqlStatement::ShowColumns { .. }
            | SqlStatement::ShowVariable { .. } => Ok(()),
            SqlStatement::Explain { statement, .. } => check_read_only(&DfStatement::Statement(statement.clone())),
            other => Err(Error::ReadOnly(format!(
                "`{}` is not allowed",
                first_words(&other.to_string())
            ))),
        },
        DfStatement::Explain(explain) => check_read_only(&explain.statement),
        DfStatement::CreateExternalTable(_) => Err(Error::ReadOnly("CREATE EXTERNAL TABLE is not allowed".into())),
        DfStatement::CopyTo(_) => Err(Error::ReadOnly("COPY is not allowed".into())),
        DfStatement::Reset(_) => Err(Error::ReadOnly("RESET is not allowed".into())),
    }
}

/// Refuses a relation named like a file or object-store path (`FROM '/etc/passwd'`,
/// `FROM 's3://bucket/key'`): only the published tables may be read. DataFusion would not open
/// such a path here anyway (no URL tables), but the answer should say it is not allowed, not
/// that no such table exists.
fn check_no_paths(statement: &DfStatement) -> Result<(), Error> {
    let DfStatement::Statement(inner) = statement else {
        return match statement {
            DfStatement::Explain(explain) => check_no_paths(&explain.statement),
            _ => Ok(()),
        };
    };
    let mut found = None;
    let _ = visit_relations(inner.as_ref(), |name| {
        let text = name.to_string();
        if text.contains('/') || text.contains('\\') || text.contains("://") {
            found = Some(text);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    match found {
        Some(path) => Err(Error::ReadOnly(format!(
            "{path} is a path: only the published tables can be queried"
        ))),
        None => Ok(()),
    }
}

/// JDBC and ODBC write positional parameters as `?`; DataFusion binds `$1`, `$2`, …: number
/// them in order of appearance.
fn number_placeholders(statement: &mut DfStatement) {
    let inner = match statement {
        DfStatement::Statement(inner) => inner.as_mut(),
        DfStatement::Explain(explain) => return number_placeholders(&mut explain.statement),
        _ => return,
    };
    let mut next = 0;
    let _ = visit_expressions_mut(inner, |expr| {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(id),
            ..
        }) = expr
            && id == "?"
        {
            next += 1;
            *id = format!("${next}");
        }
        ControlFlow::<()>::Continue(())
    });
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn root_message(e: &datafusion::error::DataFusionError) -> String {
    e.find_root().to_string()
}

/// Placeholders sorted by position (`$2` after `$1`, `$10` after `$9`).
fn ordered_parameters(plan: &LogicalPlan) -> Result<Parameters, Error> {
    let types: HashMap<String, Option<DataType>> = plan.get_parameter_types()?;
    let mut params: Vec<_> = types.into_iter().collect();
    params.sort_by_key(|(name, _)| {
        (
            name.trim_start_matches('$').parse::<u64>().unwrap_or(u64::MAX),
            name.clone(),
        )
    });
    Ok(params)
}

/// The type a BI driver reads for `ty`, if it differs: view types and dictionaries become plain
/// types, timestamps lose their zone (values stay UTC; apache/arrow-java#118).
pub fn client_type(ty: &DataType) -> Option<DataType> {
    match ty {
        DataType::Utf8View => Some(DataType::Utf8),
        DataType::BinaryView => Some(DataType::Binary),
        DataType::Dictionary(_, value) => Some(client_type(value).unwrap_or_else(|| value.as_ref().clone())),
        DataType::Timestamp(unit, Some(_)) => Some(DataType::Timestamp(*unit, None)),
        _ => None,
    }
}

/// Adds a final projection casting columns to [`client_type`], keeping names.
fn normalize_types(plan: LogicalPlan) -> Result<LogicalPlan, Error> {
    let schema = plan.schema().clone();
    if schema.fields().iter().all(|f| client_type(f.data_type()).is_none()) {
        return Ok(plan);
    }
    let exprs: Vec<_> = schema
        .iter()
        .map(|(qualifier, field)| {
            let column = datafusion::common::Column::new(qualifier.cloned(), field.name());
            match client_type(field.data_type()) {
                Some(target) => cast(col(column), target).alias(field.name()),
                None => col(column),
            }
        })
        .collect();
    Ok(LogicalPlanBuilder::from(plan).project(exprs)?.build()?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Kind as Code;
    use crate::catalog::session_config;
    use std::sync::Arc;

    /// A context with the server's settings and one table, `t (column1, column2)`.
    pub(crate) async fn context_with_t() -> SessionContext {
        let ctx = SessionContext::new_with_config(session_config());
        ctx.sql("CREATE TABLE t AS VALUES (1, 'a'), (2, 'b')")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        ctx
    }

    async fn plan(sql: &str) -> Result<Planned, Error> {
        plan_sql(&context_with_t().await.state(), sql, None).await
    }

    #[tokio::test]
    async fn writes_and_settings_are_refused() {
        for sql in [
            "CREATE TABLE x (a INT)",
            "INSERT INTO t VALUES (3, 'c')",
            "DROP TABLE t",
            "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc'",
            "COPY t TO '/tmp/x.parquet'",
            "SET datafusion.execution.batch_size = 1",
            "CREATE VIEW v AS SELECT 1",
            "EXPLAIN INSERT INTO t VALUES (3, 'c')",
        ] {
            let err = plan(sql).await.unwrap_err();
            assert_eq!(err.kind(), Code::PermissionDenied, "{sql}: {err}");
        }
    }

    #[tokio::test]
    async fn errors_have_the_right_codes() {
        assert_eq!(plan("SELEC 1").await.unwrap_err().kind(), Code::InvalidArgument);
        assert_eq!(plan("SELECT * FROM nope").await.unwrap_err().kind(), Code::NotFound);
        assert_eq!(
            plan("SELECT nope FROM t").await.unwrap_err().kind(),
            Code::InvalidArgument
        );
        for path in [
            "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM 's3://bucket/key.parquet'",
            "SELECT * FROM t WHERE column1 IN (SELECT 1 FROM '/tmp/x.csv')",
            "EXPLAIN SELECT * FROM '/etc/passwd'",
        ] {
            assert_eq!(plan(path).await.unwrap_err().kind(), Code::PermissionDenied, "{path}");
        }
    }

    #[tokio::test]
    async fn parameters_are_ordered_and_typed() {
        let planned = plan("SELECT column2 FROM t WHERE column1 = $2 OR column1 = $1")
            .await
            .unwrap();
        let names: Vec<_> = planned.parameters.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["$1", "$2"]);
        assert_eq!(planned.parameters[0].1, Some(DataType::Int64));
    }

    #[tokio::test]
    async fn question_marks_are_numbered() {
        let planned = plan("SELECT column2 FROM t WHERE column1 = ? AND column2 <> ?")
            .await
            .unwrap();
        let names: Vec<_> = planned.parameters.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["$1", "$2"]);
        assert_eq!(planned.parameters[1].1, Some(DataType::Utf8));
    }

    #[tokio::test]
    async fn announced_types_are_the_computed_ones() {
        let ctx = context_with_t().await;
        let planned = plan_sql(
            &ctx.state(),
            "SELECT CASE WHEN column1 = 1 THEN 1 ELSE 2.5 END AS x FROM t",
            None,
        )
        .await
        .unwrap();
        assert_eq!(planned.schema().field(0).data_type(), &DataType::Float64);
        let batches = datafusion::dataframe::DataFrame::new(ctx.state(), planned.plan)
            .collect()
            .await
            .unwrap();
        assert_eq!(batches[0].schema().field(0).data_type(), &DataType::Float64);
    }

    #[tokio::test]
    async fn input_rows_counts_what_the_plan_scans() {
        use crate::catalog::memory::HeldTable;
        let ctx = context_with_t().await;
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let values: arrow::array::ArrayRef = Arc::new(arrow::array::Int64Array::from_iter_values(0..1000));
        let batch = arrow::array::RecordBatch::try_new(schema.clone(), vec![values]).unwrap();
        let held = HeldTable::new(schema, &[batch], vec!["k".into()]).unwrap();
        ctx.register_table("held", Arc::new(held)).unwrap();
        let rows = |sql: &'static str| {
            let ctx = ctx.clone();
            async move { input_rows(&plan_sql(&ctx.state(), sql, None).await.unwrap().plan) }
        };
        assert_eq!(rows("SELECT 1").await, Some(0));
        assert_eq!(rows("SELECT count(*) FROM held WHERE k > 5").await, Some(1000));
        assert_eq!(rows("SELECT * FROM held a JOIN held b ON a.k = b.k").await, Some(2000));
        // `t` is a plain memory table: it does not know its count, so neither does the plan.
        assert_eq!(rows("SELECT * FROM held JOIN t ON held.k = t.column1").await, None);
    }

    #[test]
    fn client_types() {
        assert_eq!(client_type(&DataType::Utf8View), Some(DataType::Utf8));
        assert_eq!(client_type(&DataType::Int64), None);
    }
}

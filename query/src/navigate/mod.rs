//! Aggregate navigation: a GROUP BY over a large held table is answered from a much smaller
//! pre-aggregated table (a cube) whenever that gives exactly the same answer, as Dremio's
//! aggregate reflections and Druid's roll-ups do, and a join with a reference table is answered
//! from the fact table's own copies of its attributes when they are verified to hold.
//!
//! - **Lookups** ([`lookups`]): when a snapshot loads, each join the contract declares
//!   (`availability_snapshot JOIN items ON item_id`, `… JOIN nodes ON node_id`) is checked on the
//!   served data; a query's join of that kind then reads the snapshot's columns only.
//! - **Cubes** ([`cube`]): per fact table and set of dimension columns, built in the background
//!   the first time a query needs that set (that query runs on the rows meanwhile), kept for the
//!   snapshot's life within `catalog.aggregate_cache_mb`. A snapshot is prepared before it is
//!   served ([`Navigator::prepare`]): the default cubes and those the previous snapshot was
//!   asked for are built while the previous one still answers (at start-up, before the server
//!   listens), so a dashboard's first query after a swap does not compete with the builds. A
//!   cube that would not be at least [`MIN_REDUCTION`] times smaller than its table is not kept.
//! - **The rule** ([`Navigation`]): a DataFusion optimizer rule, run after DataFusion's own, that
//!   replaces an `Aggregate` over a fact table (through projections, filters, aliases and
//!   verified lookups) with the same aggregate over the smallest cube that covers its dimensions
//!   ([`rewrite`] says which aggregates are exact over a cube); with no cube yet, it still
//!   removes the verified lookups.

pub mod cube;
pub mod lookups;
pub mod resolve;
pub mod rewrite;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::catalog::TableProvider;
use datafusion::common::DFSchema;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::prelude::SessionContext;

use cube::Cube;
use lookups::Lookup;
use resolve::Source;

/// A cube is kept only if the table has at least this many rows per cell.
pub const MIN_REDUCTION: usize = 8;
/// Held tables with fewer rows are read as they are, by default (a scan is as fast as any
/// cube); `catalog.aggregate_min_rows` sets it.
pub const MIN_FACT_ROWS: usize = 10_000;
/// Columns with at most this many distinct values are in every default cube (region, status,
/// node type, department: what dashboards filter and group by first).
pub const SMALL_DIMENSION: usize = 16;

/// What becomes of a set of dimensions.
#[derive(Debug, Clone)]
enum State {
    Building,
    Ready(Arc<Cube>),
    /// Too large for its table, over the budget, or the build failed: not tried again.
    Refused,
}

/// The cubes and lookups of one snapshot.
pub struct Navigator {
    facts: HashMap<String, Arc<dyn TableProvider>>,
    fact_rows: HashMap<String, usize>,
    lookups: Vec<Lookup>,
    /// Serves the fact tables to cube builds (a context of its own: this one's rule is not in it).
    build: SessionContext,
    cubes: Mutex<HashMap<(String, BTreeSet<String>), State>>,
    /// Distinct values per column of each fact (estimates), once known.
    distinct: tokio::sync::OnceCell<HashMap<String, HashMap<String, usize>>>,
    /// One cube is built at a time, on one core: queries keep the other.
    building: tokio::sync::Semaphore,
    /// Woken whenever a cube's state changes (see [`Navigator::prepare`]).
    changed: tokio::sync::Notify,
    budget: usize,
    used: AtomicUsize,
}

/// The default cubes of a fact whose columns have `counts` distinct values, none of more than
/// `max_rows` cells: the small dimensions (at most [`SMALL_DIMENSION`] values; fewest values
/// first, while the product of their counts stays within `max_rows / SMALL_DIMENSION`, so
/// there is room for one more), then that set plus each other column the product allows.
/// Products overstate cells (region and state go together), never understate them.
pub fn default_shapes(fact: &str, counts: &HashMap<String, usize>, max_rows: usize) -> Vec<(String, BTreeSet<String>)> {
    let mut by_count: Vec<(&String, usize)> = counts.iter().map(|(c, n)| (c, (*n).max(1))).collect();
    by_count.sort_by_key(|(c, n)| (*n, (*c).clone()));
    let mut small = BTreeSet::new();
    let mut cells = 1usize;
    for (c, n) in &by_count {
        if *n <= SMALL_DIMENSION && cells.saturating_mul(*n) <= max_rows / SMALL_DIMENSION {
            small.insert((*c).clone());
            cells *= n;
        }
    }
    let mut shapes = Vec::new();
    if !small.is_empty() {
        shapes.push((fact.to_string(), small.clone()));
    }
    for (c, n) in by_count {
        if !small.contains(c) && cells.saturating_mul(n) <= max_rows {
            let mut dims = small.clone();
            dims.insert(c.clone());
            shapes.push((fact.to_string(), dims));
        }
    }
    shapes
}

impl std::fmt::Debug for Navigator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Navigator")
            .field("facts", &self.fact_rows)
            .field("lookups", &self.lookups)
            .field("cube_bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

impl Navigator {
    /// The navigator of the tables `ctx` serves: `facts` (held tables and their row counts),
    /// the lookups `lookups` verified on them, cubes within `budget` bytes (0: no cubes) of the
    /// facts with at least `min_rows` rows.
    pub fn new(
        ctx: &SessionContext,
        facts: Vec<(String, Arc<dyn TableProvider>, usize)>,
        lookups: Vec<Lookup>,
        budget: usize,
        min_rows: usize,
    ) -> Result<Self> {
        let build =
            SessionContext::new_with_config_rt(ctx.copied_config().with_target_partitions(1), ctx.runtime_env());
        let mut providers = HashMap::new();
        let mut rows = HashMap::new();
        for (name, provider, n) in facts {
            if n >= min_rows {
                build.register_table(name.as_str(), provider.clone())?;
                providers.insert(name.clone(), provider);
                rows.insert(name, n);
            }
        }
        Ok(Self {
            facts: providers,
            fact_rows: rows,
            lookups,
            build,
            cubes: Mutex::new(HashMap::new()),
            distinct: tokio::sync::OnceCell::new(),
            building: tokio::sync::Semaphore::new(1),
            changed: tokio::sync::Notify::new(),
            budget,
            used: AtomicUsize::new(0),
        })
    }

    /// The smallest ready cube of `fact` whose dimensions include `dims`; when there is none,
    /// a cube over exactly `dims` is started (once) in the background.
    fn cube_for(self: &Arc<Self>, fact: &str, dims: &BTreeSet<String>) -> Option<Arc<Cube>> {
        if self.budget == 0 {
            return None;
        }
        let mut cubes = self.cubes.lock().expect("cube lock");
        let best = cubes
            .iter()
            .filter_map(|((f, d), state)| match state {
                State::Ready(cube) if f == fact && d.is_superset(dims) => Some(cube.clone()),
                _ => None,
            })
            .min_by_key(|c| c.rows);
        if best.is_none() && !cubes.contains_key(&(fact.to_string(), dims.clone())) {
            cubes.insert((fact.to_string(), dims.clone()), State::Building);
            self.spawn_build(fact.to_string(), dims.clone());
        }
        best
    }

    /// Starts building cubes for `shapes` (say, those the previous snapshot was asked for).
    pub fn prebuild(self: &Arc<Self>, shapes: &[(String, BTreeSet<String>)]) {
        for (fact, dims) in shapes {
            if self.facts.contains_key(fact) {
                let _ = self.cube_for(fact, dims);
            }
        }
    }

    /// The (fact, dimensions) sets asked for so far, built or not.
    pub fn shapes(&self) -> Vec<(String, BTreeSet<String>)> {
        self.cubes.lock().expect("cube lock").keys().cloned().collect()
    }

    fn spawn_build(self: &Arc<Self>, fact: String, dims: BTreeSet<String>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.set(&fact, &dims, State::Refused);
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            let _turn = this.building.acquire().await;
            let max_rows = this.fact_rows.get(&fact).copied().unwrap_or(0) / MIN_REDUCTION;
            // A dimension with more values than a cube may have cells rules the cube out unbuilt.
            let distinct = this.distinct().await;
            if dims.iter().any(|d| {
                distinct
                    .get(&fact)
                    .and_then(|m| m.get(d))
                    .is_some_and(|&n| n > max_rows)
            }) {
                tracing::debug!(table = %fact, ?dims, "a dimension has too many values for a cube");
                this.set(&fact, &dims, State::Refused);
                return;
            }
            let started = std::time::Instant::now();
            let state = match cube::build(&this.build, &fact, &dims, max_rows).await {
                Ok(Some(cube)) if this.used.fetch_add(cube.bytes, Ordering::Relaxed) + cube.bytes <= this.budget => {
                    tracing::info!(table = %fact, ?dims, cells = cube.rows, mib = cube.bytes >> 20,
                        ms = started.elapsed().as_millis() as u64, "cube ready");
                    metrics::counter!("stockflight_server_cubes_built_total").increment(1);
                    State::Ready(Arc::new(cube))
                }
                Ok(Some(cube)) => {
                    this.used.fetch_sub(cube.bytes, Ordering::Relaxed);
                    tracing::info!(table = %fact, ?dims, "cube over catalog.aggregate_cache_mb; not kept");
                    State::Refused
                }
                Ok(None) => {
                    tracing::debug!(table = %fact, ?dims, "cube not much smaller than its table; not kept");
                    State::Refused
                }
                Err(e) => {
                    tracing::warn!(table = %fact, ?dims, %e, "cube build failed");
                    State::Refused
                }
            };
            this.set(&fact, &dims, state);
        });
    }

    /// Estimated distinct values of every column of every fact (HyperLogLog, one pass each).
    async fn distinct(&self) -> &HashMap<String, HashMap<String, usize>> {
        self.distinct
            .get_or_init(|| async {
                let mut out = HashMap::new();
                for fact in self.facts.keys() {
                    match cube::distinct_counts(&self.build, fact).await {
                        Ok(counts) => {
                            out.insert(fact.clone(), counts);
                        }
                        Err(e) => tracing::warn!(table = %fact, %e, "distinct counts failed"),
                    }
                }
                out
            })
            .await
    }

    /// Builds the cubes most dashboards need ([`default_shapes`]), and those of `asked` (say,
    /// the shapes the previous snapshot was asked for), and returns once none is building.
    pub async fn prepare(self: &Arc<Self>, asked: &[(String, BTreeSet<String>)]) {
        if self.budget == 0 {
            return;
        }
        let distinct = self.distinct().await.clone();
        for (fact, counts) in distinct {
            let max_rows = self.fact_rows.get(&fact).copied().unwrap_or(0) / MIN_REDUCTION;
            self.prebuild(&default_shapes(&fact, &counts, max_rows));
        }
        self.prebuild(asked);
        self.settled().await;
    }

    fn set(&self, fact: &str, dims: &BTreeSet<String>, state: State) {
        self.cubes
            .lock()
            .expect("cube lock")
            .insert((fact.to_string(), dims.clone()), state);
        self.changed.notify_waiters();
    }

    /// Waits until no cube is being built.
    pub async fn settled(&self) {
        loop {
            // Registered before the check, so a build that finishes in between still wakes us.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let building = self
                .cubes
                .lock()
                .expect("cube lock")
                .values()
                .any(|s| matches!(s, State::Building));
            if !building {
                return;
            }
            changed.await;
        }
    }

    /// Bytes the built cubes hold.
    pub fn bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// The optimizer rule (see the module docs).
#[derive(Debug)]
pub struct Navigation {
    navigator: Arc<Navigator>,
}

impl Navigation {
    /// The rule over `navigator`'s tables and cubes.
    pub fn new(navigator: Arc<Navigator>) -> Self {
        Self { navigator }
    }

    fn rewrite_aggregate(&self, plan: &LogicalPlan) -> Option<LogicalPlan> {
        let LogicalPlan::Aggregate(aggregate) = plan else {
            return None;
        };
        let catalog = resolve::Catalog {
            facts: &self.navigator.facts,
            lookups: &self.navigator.lookups,
        };
        let base = catalog.base(&aggregate.input)?;
        let Source::Fact(fact, provider) = &base.source else {
            return None;
        };
        let fact_schema = DFSchema::try_from(provider.schema().as_ref().clone()).ok()?;
        let shape = rewrite::shape(aggregate, &base, &fact_schema)?;
        if let Some(cube) = self.navigator.cube_for(fact, &shape.dims)
            && let Some(rewritten) = rewrite::plan(
                &shape,
                aggregate,
                &format!("{fact}__cube"),
                cube.table.clone(),
                Some(&cube),
                &fact_schema,
            )
        {
            metrics::counter!("stockflight_server_aggregate_rewrites_total", "to" => "cube").increment(1);
            return Some(rewritten);
        }
        if base.lookups == 0 {
            return None;
        }
        let rewritten = rewrite::plan(&shape, aggregate, fact, provider.clone(), None, &fact_schema)?;
        metrics::counter!("stockflight_server_aggregate_rewrites_total", "to" => "table").increment(1);
        Some(rewritten)
    }
}

impl OptimizerRule for Navigation {
    fn name(&self) -> &str {
        "stockflight_aggregate_navigation"
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

//! An aggregate's input, reduced to one fact table: which table is scanned, which predicates hold
//! on its rows, and each input column as an expression over the fact's own columns.
//!
//! The walk goes through projections, filters and aliases; a join with a reference table is
//! seen through when it is a verified lookup ([`super::lookups::Lookup`]): every fact row finds
//! exactly one reference row, whose attributes equal the fact's own copies, so the join adds
//! nothing but names for columns the fact already has. Anything else (limits, windows, unions,
//! other joins, subqueries, volatile functions) ends the walk: the plan is left as it is.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, TableScan};

use super::lookups::Lookup;

/// What a plan's rows come from: the fact table, or a reference table (only below a lookup).
#[derive(Debug, Clone)]
pub enum Source {
    /// A fact table with its provider.
    Fact(String, Arc<dyn TableProvider>),
    /// A reference table.
    Reference(String),
}

impl Source {
    /// The table's name.
    pub fn name(&self) -> &str {
        match self {
            Source::Fact(name, _) | Source::Reference(name) => name,
        }
    }
}

/// A plan seen as rows of one table, filtered.
#[derive(Debug, Clone)]
pub struct Base {
    /// The table.
    pub source: Source,
    /// Predicates on its rows, over its unqualified columns.
    pub predicates: Vec<Expr>,
    /// Each output column of the plan over the table's columns; `None` where a reference
    /// attribute has no verified copy in the fact table (using it stops the rewrite).
    pub columns: Vec<Option<Expr>>,
    /// Lookups seen through on the way.
    pub lookups: usize,
}

/// Tables the walk knows: fact tables (by name, with their provider) and verified lookups.
pub struct Catalog<'a> {
    /// Fact tables by name.
    pub facts: &'a HashMap<String, Arc<dyn TableProvider>>,
    /// Verified lookups.
    pub lookups: &'a [Lookup],
}

impl Catalog<'_> {
    /// `plan` as rows of one table, if it is one.
    pub fn base(&self, plan: &LogicalPlan) -> Option<Base> {
        match plan {
            LogicalPlan::TableScan(scan) => self.scan(scan),
            LogicalPlan::Filter(filter) => {
                let mut base = self.base(&filter.input)?;
                let predicate = substitute(&filter.predicate, filter.input.schema(), &base.columns)?;
                base.predicates.push(predicate);
                Some(base)
            }
            LogicalPlan::Projection(projection) => {
                let base = self.base(&projection.input)?;
                let columns = projection
                    .expr
                    .iter()
                    .map(|e| {
                        substitute(
                            &e.clone().unalias_nested().data,
                            projection.input.schema(),
                            &base.columns,
                        )
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(Base {
                    columns: columns.into_iter().map(Some).collect(),
                    ..base
                })
            }
            LogicalPlan::SubqueryAlias(alias) => self.base(&alias.input),
            LogicalPlan::Join(join) => self.lookup(join),
            _ => None,
        }
    }

    fn scan(&self, scan: &TableScan) -> Option<Base> {
        if scan.fetch.is_some() {
            return None;
        }
        let name = scan.table_name.table().to_string();
        let source = match self.facts.get(&name) {
            Some(provider)
                if source_as_provider(&scan.source)
                    .ok()
                    .is_some_and(|p| Arc::ptr_eq(&p, provider)) =>
            {
                Source::Fact(name, provider.clone())
            }
            _ if self.lookups.iter().any(|l| l.reference == name) => Source::Reference(name),
            _ => return None,
        };
        let columns: Vec<Option<Expr>> = scan
            .projected_schema
            .fields()
            .iter()
            .map(|f| Some(Expr::Column(Column::new_unqualified(f.name()))))
            .collect();
        let predicates = scan
            .filters
            .iter()
            .map(|f| substitute(f, &scan.projected_schema, &columns))
            .collect::<Option<Vec<_>>>()?;
        Some(Base {
            source,
            predicates,
            columns,
            lookups: 0,
        })
    }

    /// A join that is a verified lookup of a reference table from the fact table.
    fn lookup(&self, join: &datafusion::logical_expr::Join) -> Option<Base> {
        if join.filter.is_some() || join.on.len() != 1 || join.null_aware {
            return None;
        }
        let mut left = self.base(&join.left)?;
        let mut right = self.base(&join.right)?;
        // A reference table large enough to be a fact itself (`items` with 10,000 rows gets
        // cubes of its own) is still the reference side of a lookup from the other fact.
        let references = |r: &Base, f: &Base| match (&r.source, &f.source) {
            (Source::Fact(r, _), Source::Fact(f, _)) => self.lookups.iter().any(|l| l.reference == *r && l.table == *f),
            _ => false,
        };
        if references(&right, &left) {
            right.source = Source::Reference(right.source.name().to_string());
        } else if references(&left, &right) {
            left.source = Source::Reference(left.source.name().to_string());
        }
        let (fact, reference, fact_is_left) = match (&left.source, &right.source) {
            (Source::Fact(..), Source::Reference(_)) => (&left, &right, true),
            (Source::Reference(_), Source::Fact(..)) => (&right, &left, false),
            _ => return None,
        };
        // Every fact row is kept exactly once: an inner join, or an outer join keeping the fact side.
        let kept = match join.join_type {
            JoinType::Inner => true,
            JoinType::Left => fact_is_left,
            JoinType::Right => !fact_is_left,
            _ => false,
        };
        if !kept {
            return None;
        }
        let (Source::Fact(fact_name, _), Source::Reference(reference_name)) = (&fact.source, &reference.source) else {
            return None;
        };
        let (l, r) = &join.on[0];
        let left_key = substitute(l, join.left.schema(), &left.columns)?;
        let right_key = substitute(r, join.right.schema(), &right.columns)?;
        let (fact_key, reference_key) = if fact_is_left {
            (left_key, right_key)
        } else {
            (right_key, left_key)
        };
        let (Expr::Column(fact_key), Expr::Column(reference_key)) = (fact_key, reference_key) else {
            return None;
        };
        let lookup = self.lookups.iter().find(|l| {
            l.table == *fact_name
                && l.reference == *reference_name
                && l.key == (fact_key.name.clone(), reference_key.name.clone())
        })?;
        // The reference side's columns and predicates, over the fact's copies.
        let mapped: Vec<Option<Expr>> = reference
            .columns
            .iter()
            .map(|c| c.as_ref().and_then(|e| lookup.to_fact(e)))
            .collect();
        let mut predicates = fact.predicates.clone();
        for p in &reference.predicates {
            predicates.push(lookup.to_fact(p)?);
        }
        let columns = if fact_is_left {
            fact.columns.iter().cloned().chain(mapped).collect()
        } else {
            mapped.into_iter().chain(fact.columns.iter().cloned()).collect()
        };
        Some(Base {
            source: fact.source.clone(),
            predicates,
            columns,
            lookups: fact.lookups + reference.lookups + 1,
        })
    }
}

/// `expr` (over `schema`) with each column replaced by its expression in `columns`; `None` when
/// a column has none, or `expr` is volatile or holds a subquery.
pub fn substitute(expr: &Expr, schema: &DFSchema, columns: &[Option<Expr>]) -> Option<Expr> {
    if expr.is_volatile() {
        return None;
    }
    let mut missing = false;
    let out = expr
        .clone()
        .transform_up(|e| match e {
            Expr::Column(c) => match schema
                .index_of_column(&c)
                .ok()
                .and_then(|i| columns.get(i).cloned().flatten())
            {
                Some(base) => Ok(Transformed::yes(base)),
                None => {
                    missing = true;
                    Ok(Transformed::no(Expr::Column(c)))
                }
            },
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) | Expr::OuterReferenceColumn(..) => {
                missing = true;
                Ok(Transformed::no(e))
            }
            other => Ok(Transformed::no(other)),
        })
        .ok()?
        .data;
    (!missing).then_some(out)
}

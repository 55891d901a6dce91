//! The tables a snapshot serves, as metadata: names, kinds, client-facing schemas and keys.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::datasource::TableType;
use datafusion::prelude::SessionContext;

use crate::error::Error;
use crate::plan::client_type;
use crate::{CATALOG, SCHEMA};

/// Primary keys of the served tables: the reference tables' ids (one column each); the
/// aggregates and the drill-down table declare none.
const PRIMARY_KEYS: &[(&str, &str)] = &[("items", "item_id"), ("nodes", "node_id")];

/// How a table is exposed (the `table_type` of GetTables, JDBC's `TABLE_TYPE`, ADBC's
/// `table_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// A base table of the snapshot.
    Table,
    /// A view.
    View,
    /// A live table: answers as of now, read from Cassandra at query time
    /// (`availability_live`, `availability_current`).
    LiveTable,
    /// A live view: an aggregate as of now (`availability_by_*_current`).
    LiveView,
}

impl TableKind {
    /// The name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Table => "TABLE",
            Self::View => "VIEW",
            Self::LiveTable => "LIVE TABLE",
            Self::LiveView => "LIVE VIEW",
        }
    }

    /// Every kind (GetTableTypes lists them ordered by name, as JDBC's getTableTypes does).
    pub const ALL: [TableKind; 4] = [
        TableKind::Table,
        TableKind::View,
        TableKind::LiveTable,
        TableKind::LiveView,
    ];
}

/// One table clients may query.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// Its catalog.
    pub catalog: String,
    /// Its schema.
    pub schema_name: String,
    /// Its name.
    pub name: String,
    /// Table or view.
    pub kind: TableKind,
    /// Its columns, in the types results carry.
    pub schema: SchemaRef,
    /// Its primary key's columns, in order; empty when it declares none.
    pub primary_key: Vec<String>,
}

/// The tables of `ctx`'s catalog [`CATALOG`], sorted by schema and name.
pub async fn list(ctx: &SessionContext) -> Result<Vec<TableInfo>, Error> {
    let catalog = ctx
        .catalog(CATALOG)
        .ok_or_else(|| Error::Internal(format!("catalog {CATALOG} missing")))?;
    let mut schema_names = catalog.schema_names();
    schema_names.sort();
    let mut out = Vec::new();
    for schema_name in schema_names {
        let Some(schema) = catalog.schema(&schema_name) else {
            continue;
        };
        let mut names = schema.table_names();
        names.sort();
        for name in names {
            let Some(table) = schema.table(&name).await? else {
                continue;
            };
            let live = crate::live::is_live(table.as_ref());
            let kind = match (table.table_type(), live) {
                (TableType::Base, false) => TableKind::Table,
                (TableType::View | TableType::Temporary, false) => TableKind::View,
                (TableType::Base, true) => TableKind::LiveTable,
                (TableType::View | TableType::Temporary, true) => TableKind::LiveView,
            };
            let schema = Arc::new(client_schema(&table.schema()));
            let primary_key = PRIMARY_KEYS
                .iter()
                .filter(|(t, c)| *t == name && schema_name == SCHEMA && schema.field_with_name(c).is_ok())
                .map(|(_, c)| c.to_string())
                .collect();
            out.push(TableInfo {
                catalog: CATALOG.to_string(),
                schema_name: schema_name.clone(),
                name,
                kind,
                schema,
                primary_key,
            });
        }
    }
    Ok(out)
}

/// A table's schema with the types results actually carry.
pub fn client_schema(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match client_type(f.data_type()) {
            Some(t) => f.as_ref().clone().with_data_type(t),
            None => f.as_ref().clone(),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

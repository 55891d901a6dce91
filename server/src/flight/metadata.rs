//! Catalog metadata commands (GetCatalogs, GetDbSchemas, GetTables, GetTableTypes, keys) answered
//! from the served snapshot with arrow-flight's builders.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{GetCatalogsBuilder, GetDbSchemasBuilder, GetTablesBuilder};
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetTableTypes, CommandGetTables};
use datafusion::datasource::TableType;
use datafusion::prelude::SessionContext;

use crate::catalog::CATALOG;
use crate::error::Error;
use crate::query::plan::client_type;

/// Table types we serve, as clients name them.
pub const TABLE_TYPES: &[&str] = &["TABLE", "VIEW"];

/// Declared keys of the reference tables (`proto::layout::reference`): (table, key column).
const PRIMARY_KEYS: &[(&str, &str)] = &[("items", "item_id"), ("nodes", "node_id")];

/// `GetCatalogs`: the one catalog.
pub fn catalogs() -> Result<RecordBatch, Error> {
    let mut b = GetCatalogsBuilder::new();
    b.append(CATALOG);
    Ok(b.build()?)
}

/// `GetDbSchemas`, filtered by catalog and schema pattern.
pub fn db_schemas(ctx: &SessionContext, cmd: CommandGetDbSchemas) -> Result<RecordBatch, Error> {
    let mut b = cmd.into_builder();
    for schema in schema_names(ctx) {
        b.append(CATALOG, schema);
    }
    Ok(b.build()?)
}

/// The schema of `GetDbSchemas` results.
pub fn db_schemas_schema() -> SchemaRef {
    GetDbSchemasBuilder::new(None::<String>, None::<String>).schema()
}

/// `GetTables`, filtered, with each table's Arrow schema when asked.
pub async fn tables(ctx: &SessionContext, cmd: CommandGetTables) -> Result<RecordBatch, Error> {
    let mut b = cmd.into_builder();
    let catalog = ctx
        .catalog(CATALOG)
        .ok_or_else(|| Error::Internal("catalog missing".into()))?;
    for schema_name in schema_names(ctx) {
        let Some(schema) = catalog.schema(&schema_name) else {
            continue;
        };
        let mut names = schema.table_names();
        names.sort();
        for name in names {
            let Some(table) = schema.table(&name).await? else {
                continue;
            };
            let kind = match table.table_type() {
                TableType::Base => "TABLE",
                TableType::View | TableType::Temporary => "VIEW",
            };
            b.append(CATALOG, &schema_name, &name, kind, &client_schema(&table.schema()))?;
        }
    }
    Ok(b.build()?)
}

/// The schema of `GetTables` results.
pub fn tables_schema(include_schema: bool) -> SchemaRef {
    GetTablesBuilder::new(
        None::<String>,
        None::<String>,
        None::<String>,
        None::<String>,
        include_schema,
    )
    .schema()
}

/// `GetTableTypes`.
pub fn table_types() -> Result<RecordBatch, Error> {
    let mut b = CommandGetTableTypes {}.into_builder();
    for t in TABLE_TYPES {
        b.append(t);
    }
    Ok(b.build()?)
}

/// The schema of `GetTableTypes` results.
pub fn table_types_schema() -> SchemaRef {
    CommandGetTableTypes {}.into_builder().schema()
}

/// `GetPrimaryKeys`: the reference tables' keys; the aggregates have none.
pub async fn primary_keys(ctx: &SessionContext, cmd: CommandGetPrimaryKeys) -> Result<RecordBatch, Error> {
    let schema = primary_keys_schema();
    let matches_catalog = cmd.catalog.as_deref().is_none_or(|c| c == CATALOG);
    let matches_schema = cmd.db_schema.as_deref().is_none_or(|s| s == crate::catalog::SCHEMA);
    let key = PRIMARY_KEYS.iter().find(|(t, _)| *t == cmd.table);
    let present = match key {
        Some((table, column)) if matches_catalog && matches_schema => ctx
            .table_provider(*table)
            .await
            .is_ok_and(|t| t.schema().field_with_name(column).is_ok()),
        _ => false,
    };
    if !present {
        return Ok(RecordBatch::new_empty(schema));
    }
    let (table, column) = key.expect("present implies a key");
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(arrow::array::StringArray::from(vec![CATALOG])),
            Arc::new(arrow::array::StringArray::from(vec![crate::catalog::SCHEMA])),
            Arc::new(arrow::array::StringArray::from(vec![*table])),
            Arc::new(arrow::array::StringArray::from(vec![*column])),
            Arc::new(arrow::array::StringArray::from(vec![Some(format!("{table}_pkey"))])),
            Arc::new(arrow::array::Int32Array::from(vec![1])),
        ],
    )?)
}

/// The schema of `GetPrimaryKeys` results (Flight SQL spec).
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// The schema of `GetExportedKeys`, `GetImportedKeys` and `GetCrossReference` results; no
/// foreign keys are declared, so their answers are empty.
pub fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
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
    Schema::new(fields)
}

fn schema_names(ctx: &SessionContext) -> Vec<String> {
    let mut names = ctx.catalog(CATALOG).map(|c| c.schema_names()).unwrap_or_default();
    names.sort();
    names
}

//! Catalog metadata commands (GetCatalogs, GetDbSchemas, GetTables, GetTableTypes, keys): the
//! data layer's table list, encoded with arrow-flight's builders.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{GetCatalogsBuilder, GetDbSchemasBuilder, GetTablesBuilder};
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetTableTypes, CommandGetTables};
use stockflight_query::{CATALOG, TableInfo, TableKind};

use crate::error::Error;

/// `GetCatalogs`: the one catalog.
pub fn catalogs() -> Result<RecordBatch, Error> {
    let mut b = GetCatalogsBuilder::new();
    b.append(CATALOG);
    Ok(b.build()?)
}

/// `GetDbSchemas`, filtered by catalog and schema pattern.
pub fn db_schemas(tables: &[TableInfo], cmd: CommandGetDbSchemas) -> Result<RecordBatch, Error> {
    let mut b = cmd.into_builder();
    let mut schemas: Vec<(&str, &str)> = tables
        .iter()
        .map(|t| (t.catalog.as_str(), t.schema_name.as_str()))
        .collect();
    schemas.dedup();
    for (catalog, schema) in schemas {
        b.append(catalog, schema);
    }
    Ok(b.build()?)
}

/// The schema of `GetDbSchemas` results.
pub fn db_schemas_schema() -> SchemaRef {
    GetDbSchemasBuilder::new(None::<String>, None::<String>).schema()
}

/// `GetTables`, filtered, with each table's Arrow schema when asked.
pub fn tables(tables: &[TableInfo], cmd: CommandGetTables) -> Result<RecordBatch, Error> {
    let mut b = cmd.into_builder();
    for t in tables {
        b.append(&t.catalog, &t.schema_name, &t.name, t.kind.as_str(), &t.schema)?;
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
    for kind in TableKind::ALL {
        b.append(kind.as_str());
    }
    Ok(b.build()?)
}

/// The schema of `GetTableTypes` results.
pub fn table_types_schema() -> SchemaRef {
    CommandGetTableTypes {}.into_builder().schema()
}

/// `GetPrimaryKeys` of one table (none when it declares none or does not exist).
pub fn primary_keys(tables: &[TableInfo], cmd: CommandGetPrimaryKeys) -> Result<RecordBatch, Error> {
    let table = tables.iter().find(|t| {
        t.name == cmd.table
            && cmd.catalog.as_deref().is_none_or(|c| c == t.catalog)
            && cmd.db_schema.as_deref().is_none_or(|s| s == t.schema_name)
    });
    let Some(table) = table.filter(|t| !t.primary_key.is_empty()) else {
        return Ok(RecordBatch::new_empty(primary_keys_schema()));
    };
    let n = table.primary_key.len();
    let repeat = |v: &str| Arc::new(arrow::array::StringArray::from(vec![v; n])) as arrow::array::ArrayRef;
    Ok(RecordBatch::try_new(
        primary_keys_schema(),
        vec![
            repeat(&table.catalog),
            repeat(&table.schema_name),
            repeat(&table.name),
            Arc::new(arrow::array::StringArray::from(table.primary_key.clone())),
            repeat(&format!("{}_pkey", table.name)),
            Arc::new(arrow::array::Int32Array::from_iter_values(1..=n as i32)),
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

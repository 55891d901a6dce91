//! The gRPC edge: arrow-flight's `FlightSqlService`, each command answered deliberately.
//!
//! This layer only decodes commands, asks the data layer ([`DataLayer`]) and encodes the answers.
//! Queries: statement and prepared-statement requests are planned for their schema and return a
//! ticket holding the SQL and the snapshot it was planned on (see [`handles`]); DoGet runs it.
//! Metadata: the data layer's table list, encoded with arrow-flight's builders.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{SqlInfoDataBuilder, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightDescriptor,
    FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
    flight_service_server::FlightService,
};
use futures::{Stream, TryStreamExt};
use prost::Message;
use stockflight_query::{Caller, DataLayer, Error as DataError, Run, Statement};
use tonic::{Request, Response, Status, Streaming};

use super::auth::{Auth, Login};
use super::encode::encode;
use super::handles::{self, PreparedHandle, QueryTicket};
use super::keep_alive::keep_alive;
use super::{metadata, session, sql_info::sql_info, xdbc::xdbc_type_info};
use crate::error::Error;

type DoGetStream = super::encode::FlightStream;
type ActionStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::Result, Status>> + Send + 'static>>;

/// Stockflight's Flight SQL service.
#[derive(Debug, Clone)]
pub struct StockflightFlightSql {
    data: Arc<dyn DataLayer>,
    auth: Arc<Auth>,
    keep_alive: Duration,
}

impl StockflightFlightSql {
    /// A service answering from `data`, guarded by `auth`, sending an empty batch every
    /// `keep_alive` while a query produces nothing.
    pub fn new(data: Arc<dyn DataLayer>, auth: Arc<Auth>, keep_alive: Duration) -> Self {
        Self { data, auth, keep_alive }
    }

    /// Who is calling, from the request's credentials.
    fn authorize<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        Ok(Caller::new(self.auth.check(request.metadata())?))
    }

    /// A FlightInfo whose one endpoint redeems `ticket` on this same service (no location: a
    /// client reuses its connection, so no address, let alone 0.0.0.0, is ever advertised).
    fn info(schema: &Schema, descriptor: FlightDescriptor, ticket: Vec<u8>) -> Result<FlightInfo, Status> {
        Ok(FlightInfo::new()
            .try_with_schema(schema)
            .map_err(Error::from)?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
            .with_descriptor(descriptor)
            .with_total_records(-1)
            .with_total_bytes(-1))
    }

    /// FlightInfo for a query: plans it now for the schema; the ticket carries SQL and parameters.
    async fn query_info(
        &self,
        caller: &Caller,
        sql: String,
        params: Vec<u8>,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let statement = Statement {
            sql,
            params: handles::decode_params(&params)?,
        };
        let prepared = self
            .data
            .prepare(caller, statement.clone())
            .await
            .map_err(Error::from)?;
        let ticket = QueryTicket {
            query_id: uuid::Uuid::new_v4().to_string(),
            sql: statement.sql,
            params,
            snapshot: prepared.snapshot,
        };
        let statement = TicketStatementQuery {
            statement_handle: handles::encode(&ticket),
        };
        Self::info(&prepared.schema, descriptor, statement.as_any().encode_to_vec())
    }

    /// FlightInfo for a metadata command: the command itself is the ticket.
    fn command_info(
        schema: &Schema,
        command: impl ProstMessageExt,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        Self::info(schema, descriptor, command.as_any().encode_to_vec())
    }

    async fn run(&self, caller: &Caller, ticket: QueryTicket) -> Result<Response<DoGetStream>, Status> {
        let run = Run {
            query_id: ticket.query_id,
            statement: Statement {
                sql: ticket.sql,
                params: handles::decode_params(&ticket.params)?,
            },
            snapshot: (!ticket.snapshot.is_empty()).then_some(ticket.snapshot),
        };
        let answer = self.data.run(caller, run).await.map_err(Error::from)?;
        let batches = keep_alive(answer.schema.clone(), answer.batches, self.keep_alive);
        Ok(Response::new(encode(answer.schema, batches)))
    }

    fn batch(batch: Result<RecordBatch, Error>) -> Result<Response<DoGetStream>, Status> {
        let batch = batch?;
        let schema = batch.schema();
        Ok(Response::new(encode(schema, futures::stream::iter([Ok(batch)]))))
    }

    async fn tables(&self, caller: &Caller) -> Result<Vec<stockflight_query::TableInfo>, Status> {
        Ok(self.data.tables(caller).await.map_err(Error::from)?)
    }
}

fn schema_ipc(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(Error::from)?;
    Ok(bytes)
}

fn one_result(body: Vec<u8>) -> Response<ActionStream> {
    Response::new(Box::pin(futures::stream::iter([Ok(arrow_flight::Result {
        body: body.into(),
    })])))
}

fn decode_ticket(statement_handle: &[u8]) -> Result<QueryTicket, Status> {
    Ok(handles::decode(statement_handle, "ticket")?)
}

#[tonic::async_trait]
impl FlightSqlService for StockflightFlightSql {
    type FlightService = Self;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>, Status> {
        let login = self.auth.login(request.metadata()).await?;
        let token = match &login {
            Login::Open => Vec::new(),
            Login::Token(token) => token.as_bytes().to_vec(),
        };
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>> =
            Response::new(Box::pin(futures::stream::iter([Ok(reply)])));
        if let Login::Token(token) = login {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| Status::internal("token is not a header value"))?;
            response.metadata_mut().insert("authorization", value);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.authorize(&request)?;
        let info = self
            .query_info(&caller, query.query, Vec::new(), request.into_inner())
            .await?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.authorize(&request)?;
        let handle: PreparedHandle = handles::decode(&cmd.prepared_statement_handle, "prepared statement handle")?;
        let info = self
            .query_info(&caller, handle.sql, handle.params, request.into_inner())
            .await?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = query.into_builder().schema();
        Ok(Response::new(Self::command_info(&schema, query, request.into_inner())?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(Self::command_info(
            &metadata::db_schemas_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = metadata::tables_schema(query.include_schema);
        Ok(Response::new(Self::command_info(&schema, query, request.into_inner())?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(Self::command_info(
            &metadata::table_types_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = SqlInfoDataBuilder::schema();
        Ok(Response::new(Self::command_info(schema, query, request.into_inner())?))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(Self::command_info(
            &metadata::primary_keys_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(Self::command_info(
            &metadata::foreign_keys_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(Self::command_info(
            &metadata::foreign_keys_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(Self::command_info(
            &metadata::foreign_keys_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = XdbcTypeInfoDataBuilder::new().schema();
        Ok(Response::new(Self::command_info(&schema, query, request.into_inner())?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.authorize(&request)?;
        self.run(&caller, decode_ticket(&ticket.statement_handle)?).await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.authorize(&request)?;
        let handle: PreparedHandle = handles::decode(&query.prepared_statement_handle, "prepared statement handle")?;
        self.run(
            &caller,
            QueryTicket {
                query_id: uuid::Uuid::new_v4().to_string(),
                sql: handle.sql,
                params: handle.params,
                snapshot: String::new(),
            },
        )
        .await
    }

    async fn do_get_catalogs(
        &self,
        _query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        Self::batch(metadata::catalogs())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.authorize(&request)?;
        Self::batch(metadata::db_schemas(&self.tables(&caller).await?, query))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.authorize(&request)?;
        Self::batch(metadata::tables(&self.tables(&caller).await?, query))
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        Self::batch(metadata::table_types())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        Self::batch(query.into_builder(sql_info()).build().map_err(Error::from))
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.authorize(&request)?;
        Self::batch(metadata::primary_keys(&self.tables(&caller).await?, query))
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        Self::batch(Ok(RecordBatch::new_empty(metadata::foreign_keys_schema())))
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        Self::batch(Ok(RecordBatch::new_empty(metadata::foreign_keys_schema())))
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        Self::batch(Ok(RecordBatch::new_empty(metadata::foreign_keys_schema())))
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request)?;
        Self::batch(query.into_builder(xdbc_type_info()).build().map_err(Error::from))
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.authorize(&request)?;
        Err(Error::from(DataError::ReadOnly("updates are not allowed".into())).into())
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.authorize(&request)?;
        Err(Error::from(DataError::ReadOnly("updates are not allowed".into())).into())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let caller = self.authorize(&request)?;
        let mut handle: PreparedHandle =
            handles::decode(&query.prepared_statement_handle, "prepared statement handle")?;
        let flight_data = request.into_inner().map_err(FlightError::from);
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(flight_data)
                .try_collect()
                .await
                .map_err(|e| Error::InvalidArgument(format!("parameters: {e}")))?;
        let rows: Vec<&RecordBatch> = batches.iter().filter(|b| b.num_rows() > 0).collect();
        handle.params = match rows.as_slice() {
            [] => Vec::new(),
            [one] => {
                handles::row_values(one)?;
                handles::encode_params(one)?
            }
            _ => return Err(Error::InvalidArgument("bind exactly one row of parameters".into()).into()),
        };
        // Check the binding now, so a type mismatch fails here and not at execution.
        let statement = Statement {
            sql: handle.sql.clone(),
            params: handles::decode_params(&handle.params)?,
        };
        self.data.prepare(&caller, statement).await.map_err(Error::from)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handles::encode(&handle)),
        })
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let caller = self.authorize(&request)?;
        let statement = Statement {
            sql: query.query,
            params: None,
        };
        let prepared = self
            .data
            .prepare(&caller, statement.clone())
            .await
            .map_err(Error::from)?;
        let handle = PreparedHandle {
            sql: statement.sql,
            params: Vec::new(),
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handles::encode(&handle),
            dataset_schema: schema_ipc(&prepared.schema)?,
            parameter_schema: schema_ipc(&prepared.parameters)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        // Handles are stateless: nothing to release.
        self.authorize(&request)?;
        Ok(())
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let caller = self.authorize(&request)?;
        let info = FlightInfo::decode(query.info).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let result = self.cancel_info(&caller, &info)?;
        Ok(ActionCancelQueryResult {
            result: if result == CancelStatus::Cancelled { 1 } else { 3 },
        })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let caller = self.authorize(&request)?;
        let action = request.into_inner();
        let bad = |e: prost::DecodeError| Status::from(Error::InvalidArgument(format!("{}: {e}", action.r#type)));
        match action.r#type.as_str() {
            session::SET_SESSION_OPTIONS => Ok(one_result(session::set_options(&action.body).map_err(bad)?)),
            session::GET_SESSION_OPTIONS => Ok(one_result(session::get_options())),
            session::CLOSE_SESSION => Ok(one_result(session::close())),
            session::CANCEL_FLIGHT_INFO => {
                let request = CancelFlightInfoRequest::decode(action.body.clone()).map_err(bad)?;
                let info = request
                    .info
                    .ok_or_else(|| Status::from(Error::InvalidArgument("CancelFlightInfo without info".into())))?;
                let status = self.cancel_info(&caller, &info)?;
                Ok(one_result(CancelFlightInfoResult::new(status).encode_to_vec()))
            }
            other => Err(Status::unimplemented(format!("action {other} is not supported"))),
        }
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        let action = |name: &str, description: &str| {
            Ok(ActionType {
                r#type: name.into(),
                description: description.into(),
            })
        };
        Some(vec![
            action(
                session::SET_SESSION_OPTIONS,
                "Accepts catalog=stockflight and schema=public",
            ),
            action(session::GET_SESSION_OPTIONS, "The session's catalog and schema"),
            action(session::CLOSE_SESSION, "Ends the session (nothing is held)"),
            action(session::CANCEL_FLIGHT_INFO, "Stops the query of a FlightInfo"),
        ])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

impl StockflightFlightSql {
    fn cancel_info(&self, caller: &Caller, info: &FlightInfo) -> Result<CancelStatus, Status> {
        let mut cancelled = false;
        for endpoint in &info.endpoint {
            let Some(ticket) = &endpoint.ticket else { continue };
            let any = Any::decode(ticket.ticket.clone()).map_err(|e| Error::InvalidArgument(e.to_string()))?;
            let Ok(Some(statement)) = any.unpack::<TicketStatementQuery>() else {
                continue;
            };
            let query = decode_ticket(&statement.statement_handle)?;
            cancelled |= self.data.cancel(caller, &query.query_id);
        }
        Ok(if cancelled {
            CancelStatus::Cancelled
        } else {
            CancelStatus::NotCancellable
        })
    }
}

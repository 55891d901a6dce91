"""GetXdbcTypeInfo (ODBC ``SQLGetTypeInfo``) against the real stockflight-server, through
pyarrow's C++ Flight client.

The Flight SQL JDBC driver answers ``getTypeInfo`` itself and ADBC has no call for it, so the
command is sent as the ODBC driver sends it: GetFlightInfo of ``CommandGetXdbcTypeInfo``, then
DoGet of its ticket. Expected codes are the ODBC/JDBC constants (``java.sql.Types``), not the
server's.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.flight as flight
import pytest

# java.sql.Types / ODBC SQL_* codes of the types the server's results use.
EXPECTED = {
    "BOOLEAN": -7,  # BIT
    "TINYINT": -6,
    "SMALLINT": 5,
    "INTEGER": 4,
    "BIGINT": -5,
    "REAL": 7,
    "DOUBLE": 8,
    "DECIMAL": 3,
    "VARCHAR": 12,
    "VARBINARY": -3,
    "DATE": 91,
    "TIME": 92,
    "TIMESTAMP": 93,
}
SQL_DATETIME = 9  # ODBC's verbose type of DATE/TIME/TIMESTAMP, with subcodes 1, 2, 3
COLUMNS = [
    "type_name", "data_type", "column_size", "literal_prefix", "literal_suffix", "create_params",
    "nullable", "case_sensitive", "searchable", "unsigned_attribute", "fixed_prec_scale",
    "auto_increment", "local_type_name", "minimum_scale", "maximum_scale", "sql_data_type",
    "datetime_subcode", "num_prec_radix", "interval_precision",
]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _any(type_name: str, value: bytes) -> bytes:
    """google.protobuf.Any{type_url, value}, encoded by hand (two length-delimited fields)."""
    url = f"type.googleapis.com/arrow.flight.protocol.sql.{type_name}".encode()
    return b"\x0a" + _varint(len(url)) + url + b"\x12" + _varint(len(value)) + value


def _xdbc_type_info(server, data_type: int | None = None) -> pa.Table:
    # CommandGetXdbcTypeInfo { optional int32 data_type = 1; } (negative ints are 10-byte varints)
    body = b"" if data_type is None else b"\x08" + _varint(data_type & 0xFFFFFFFFFFFFFFFF)
    client = flight.connect(server.uri.replace("grpc://", "grpc+tcp://"))
    try:
        header = client.authenticate_basic_token(server.username, server.password)
        options = flight.FlightCallOptions(headers=[header])
        descriptor = flight.FlightDescriptor.for_command(_any("CommandGetXdbcTypeInfo", body))
        info = client.get_flight_info(descriptor, options)
        assert len(info.endpoints) == 1
        assert info.endpoints[0].locations == []  # redeemed on this connection
        table = client.do_get(info.endpoints[0].ticket, options).read_all()
        assert table.schema.equals(info.schema), (table.schema, info.schema)
        return table
    finally:
        client.close()


def test_type_info_lists_every_result_type_with_odbc_codes(stockflight_server):
    table = _xdbc_type_info(stockflight_server)
    assert table.column_names == COLUMNS
    rows = {r["type_name"]: r for r in table.to_pylist()}
    assert {name: r["data_type"] for name, r in rows.items()} == EXPECTED
    for name in ("DATE", "TIME", "TIMESTAMP"):
        assert rows[name]["sql_data_type"] == SQL_DATETIME, rows[name]
    assert [rows[n]["datetime_subcode"] for n in ("DATE", "TIME", "TIMESTAMP")] == [1, 2, 3]
    assert rows["VARCHAR"]["literal_prefix"] == "'" and rows["VARCHAR"]["literal_suffix"] == "'"
    assert rows["BIGINT"]["num_prec_radix"] == 10
    assert all(r["nullable"] == 1 for r in rows.values())  # SQL_NULLABLE


@pytest.mark.parametrize("name", ["VARCHAR", "BIGINT", "TIMESTAMP"])
def test_type_info_filters_by_data_type(stockflight_server, name):
    table = _xdbc_type_info(stockflight_server, EXPECTED[name])
    assert table.column("type_name").to_pylist() == [name]


def test_type_info_needs_credentials(stockflight_server):
    client = flight.connect(stockflight_server.uri.replace("grpc://", "grpc+tcp://"))
    try:
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.get_flight_info(flight.FlightDescriptor.for_command(_any("CommandGetXdbcTypeInfo", b"")))
    finally:
        client.close()

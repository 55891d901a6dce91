"""The Python client stack installed by dev/tools is real and usable.

No server is needed: the connection tests dial a loopback port that nothing
listens on and expect the native drivers to report that, which proves the
driver shared libraries loaded and tried the network.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from conftest import read_pins

# distribution name -> module to import
MODULES = {
    "pyarrow": "pyarrow",
    "adbc-driver-manager": "adbc_driver_manager",
    "adbc-driver-flightsql": "adbc_driver_flightsql",
    "pytest": "pytest",
    "numpy": "numpy",
    "pandas": "pandas",
    "duckdb": "duckdb",
    "matplotlib": "matplotlib",
    "polars": "polars",
}
# Must be pinned: the Flight SQL tests depend on them.
REQUIRED = ("pyarrow", "adbc-driver-manager", "adbc-driver-flightsql", "pytest")


def test_python_is_311_or_newer():
    assert sys.version_info >= (3, 11), sys.version


def test_required_packages_are_pinned(pinned_versions):
    missing = [name for name in REQUIRED if name not in pinned_versions]
    assert not missing, f"not pinned in requirements.txt: {missing}"


@pytest.mark.parametrize("dist", sorted(read_pins()))
def test_pinned_package_installed_at_least_pin(dist, pinned_versions):
    installed = Version(importlib.metadata.version(dist))
    assert installed >= Version(pinned_versions[dist]), (
        f"{dist} {installed} is older than the pin {pinned_versions[dist]}; "
        "re-run dev/tools"
    )
    module = MODULES.get(dist)
    if module is not None:
        importlib.import_module(module)


def test_pyarrow_version_and_flight(pinned_versions):
    import pyarrow
    import pyarrow.flight  # noqa: F401  (Flight is compiled into the wheel)

    assert Version(pyarrow.__version__) >= Version(pinned_versions["pyarrow"])
    table = pyarrow.table({"x": [1, 2, 3]})
    assert table.num_rows == 3


def test_adbc_versions(pinned_versions):
    import adbc_driver_flightsql
    import adbc_driver_manager

    assert Version(adbc_driver_manager.__version__) >= Version(
        pinned_versions["adbc-driver-manager"]
    )
    assert Version(adbc_driver_flightsql.__version__) >= Version(
        pinned_versions["adbc-driver-flightsql"]
    )


def test_flightsql_driver_shared_library_present():
    import adbc_driver_flightsql

    path = Path(adbc_driver_flightsql._driver_path())
    assert path.is_file(), f"ADBC Flight SQL driver library missing: {path}"
    with path.open("rb") as f:
        assert f.read(4) == b"\x7fELF", f"{path} is not an ELF shared library"


def test_adbc_connect_to_closed_port_fails_with_adbc_error(closed_loopback_port):
    """Loads the native Go driver and makes it dial: the error must be ADBC's."""
    import adbc_driver_flightsql
    import adbc_driver_manager

    uri = f"grpc://127.0.0.1:{closed_loopback_port}"
    # Database and connection creation are lazy in the Flight SQL driver; the
    # first RPC (GetInfo -> GetSqlInfo) is what dials.
    with adbc_driver_flightsql.connect(uri) as db:
        with adbc_driver_manager.AdbcConnection(db) as conn:
            with pytest.raises(adbc_driver_manager.OperationalError) as excinfo:
                conn.get_info()
    err = excinfo.value
    assert err.status_code == adbc_driver_manager.AdbcStatusCode.IO
    message = str(err).lower()
    assert "connection" in message, message
    assert f"127.0.0.1:{closed_loopback_port}" in message, message


def test_adbc_dbapi_query_to_closed_port_fails(closed_loopback_port):
    import adbc_driver_flightsql.dbapi
    import adbc_driver_manager.dbapi

    uri = f"grpc://127.0.0.1:{closed_loopback_port}"
    # autocommit=True: otherwise the DB-API layer warns that it could not
    # turn autocommit off (it cannot ask the unreachable server).
    with adbc_driver_flightsql.dbapi.connect(uri, autocommit=True) as conn:
        with conn.cursor() as cur:
            with pytest.raises(adbc_driver_manager.dbapi.OperationalError) as excinfo:
                cur.execute("SELECT 1")
    assert "connection" in str(excinfo.value).lower()


def test_pyarrow_flight_client_to_closed_port_fails(closed_loopback_port):
    import pyarrow.flight as flight

    client = flight.connect(f"grpc+tcp://127.0.0.1:{closed_loopback_port}")
    try:
        with pytest.raises(flight.FlightUnavailableError):
            list(client.list_flights(options=flight.FlightCallOptions(timeout=10)))
    finally:
        client.close()


def test_arrow_duckdb_pandas_interop():
    import duckdb
    import pyarrow as pa

    prices = pa.table({"sku": ["a", "b", "a"], "qty": [1, 2, 3]})
    con = duckdb.connect()
    try:
        con.register("prices", prices)
        result = con.sql("SELECT sku, sum(qty) AS qty FROM prices GROUP BY sku ORDER BY sku")
        table = result.to_arrow_table()
    finally:
        con.close()
    assert table.to_pydict() == {"sku": ["a", "b"], "qty": [4, 2]}
    frame = table.to_pandas()
    assert list(frame["qty"]) == [4, 2]

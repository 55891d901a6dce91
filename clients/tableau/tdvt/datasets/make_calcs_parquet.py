"""Writes calcs.parquet (TDVT's Calcs table) from Calcs_headers.csv with TDVT's column types.

The column types are those of TDVT's DDL (connector-plugin-sdk, tests/datasets/TestV1/DDL/Calcs.sql):
doubles, strings, 32-bit integers, booleans, dates, timestamps (time0, datetime0) and a time of
day (time1). The CSV follows PostgreSQL's COPY ... CSV rules, which TDVT loads it with: an
unquoted empty field is NULL, a quoted one ("") the empty string (datetime1 has both).

    python3 make_calcs_parquet.py            # needs pyarrow (dev/tools installs it)
"""

import datetime
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq

HERE = pathlib.Path(__file__).resolve().parent

COLUMNS = [
    ("key", pa.string()),
    *[(f"num{i}", pa.float64()) for i in range(5)],
    *[(f"str{i}", pa.string()) for i in range(4)],
    *[(f"int{i}", pa.int32()) for i in range(4)],
    *[(f"bool{i}", pa.bool_()) for i in range(4)],
    *[(f"date{i}", pa.date32()) for i in range(4)],
    ("time0", pa.timestamp("us")),
    ("time1", pa.time64("us")),
    ("datetime0", pa.timestamp("us")),
    ("datetime1", pa.string()),
    ("zzz", pa.string()),
]


def fields(line):
    """The fields of one CSV line as (text, quoted) pairs; a doubled quote inside quotes is one quote."""
    out, i = [], 0
    while True:
        if i < len(line) and line[i] == '"':
            text, i = [], i + 1
            while True:
                if line[i] == '"' and i + 1 < len(line) and line[i + 1] == '"':
                    text.append('"')
                    i += 2
                elif line[i] == '"':
                    i += 1
                    break
                else:
                    text.append(line[i])
                    i += 1
            out.append(("".join(text), True))
        else:
            end = line.find(",", i)
            end = len(line) if end < 0 else end
            out.append((line[i:end], False))
            i = end
        if i >= len(line):
            return out
        assert line[i] == ",", f"expected a comma at {i} of {line!r}"
        i += 1


def value(text, quoted, kind):
    if text == "" and not quoted:
        return None
    if pa.types.is_string(kind):
        return text
    if pa.types.is_floating(kind):
        return float(text)
    if pa.types.is_integer(kind):
        return int(text)
    if pa.types.is_boolean(kind):
        return {"1": True, "0": False}[text]
    if pa.types.is_date(kind):
        return datetime.date.fromisoformat(text)
    if pa.types.is_timestamp(kind):
        return datetime.datetime.fromisoformat(text)
    if pa.types.is_time(kind):
        return datetime.time.fromisoformat(text)
    raise ValueError(kind)


def main():
    lines = (HERE / "Calcs_headers.csv").read_text(encoding="utf-8").splitlines()
    header = [name for name, _ in fields(lines[0])]
    assert header == [name for name, _ in COLUMNS], header
    rows = [fields(line) for line in lines[1:] if line]
    arrays = [
        pa.array([value(*row[i], kind) for row in rows], type=kind) for i, (_, kind) in enumerate(COLUMNS)
    ]
    table = pa.Table.from_arrays(arrays, schema=pa.schema(COLUMNS))
    pq.write_table(table, HERE / "calcs.parquet")
    print(f"calcs.parquet: {table.num_rows} rows, {table.num_columns} columns")


if __name__ == "__main__":
    main()

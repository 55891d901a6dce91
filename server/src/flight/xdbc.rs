//! `GetXdbcTypeInfo`: the SQL types our results use, as `SQLGetTypeInfo` / `getTypeInfo` report them.

use std::sync::OnceLock;

use arrow_flight::sql::metadata::{XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{Nullable, Searchable, XdbcDataType, XdbcDatetimeSubcode};

/// The type table, built once.
pub fn xdbc_type_info() -> &'static XdbcTypeInfoData {
    static DATA: OnceLock<XdbcTypeInfoData> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut b = XdbcTypeInfoDataBuilder::new();
        for (name, ty, size, prefix, radix) in [
            ("BOOLEAN", XdbcDataType::XdbcBit, 1, None, None),
            ("TINYINT", XdbcDataType::XdbcTinyint, 3, None, Some(10)),
            ("SMALLINT", XdbcDataType::XdbcSmallint, 5, None, Some(10)),
            ("INTEGER", XdbcDataType::XdbcInteger, 10, None, Some(10)),
            ("BIGINT", XdbcDataType::XdbcBigint, 19, None, Some(10)),
            ("REAL", XdbcDataType::XdbcReal, 7, None, Some(2)),
            ("DOUBLE", XdbcDataType::XdbcDouble, 15, None, Some(2)),
            ("DECIMAL", XdbcDataType::XdbcDecimal, 38, None, Some(10)),
            ("VARCHAR", XdbcDataType::XdbcVarchar, i32::MAX, Some("'"), None),
            ("VARBINARY", XdbcDataType::XdbcVarbinary, i32::MAX, Some("X'"), None),
            ("DATE", XdbcDataType::XdbcDate, 10, Some("DATE '"), None),
            ("TIME", XdbcDataType::XdbcTime, 18, Some("TIME '"), None),
            ("TIMESTAMP", XdbcDataType::XdbcTimestamp, 29, Some("TIMESTAMP '"), None),
        ] {
            let is_text = matches!(ty, XdbcDataType::XdbcVarchar);
            let datetime = match ty {
                XdbcDataType::XdbcDate => Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
                XdbcDataType::XdbcTime => Some(XdbcDatetimeSubcode::XdbcSubcodeTime),
                XdbcDataType::XdbcTimestamp => Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
                _ => None,
            };
            b.append(XdbcTypeInfo {
                type_name: name.into(),
                data_type: ty,
                column_size: Some(size),
                literal_prefix: prefix.map(String::from),
                literal_suffix: prefix.map(|_| "'".to_string()),
                create_params: None,
                nullable: Nullable::NullabilityNullable,
                case_sensitive: is_text,
                searchable: if is_text { Searchable::Full } else { Searchable::Basic },
                unsigned_attribute: radix.map(|_| false),
                fixed_prec_scale: false,
                auto_increment: radix.map(|_| false),
                local_type_name: Some(name.into()),
                minimum_scale: None,
                maximum_scale: None,
                sql_data_type: if datetime.is_some() {
                    XdbcDataType::XdbcDatetime
                } else {
                    ty
                },
                datetime_subcode: datetime,
                num_prec_radix: radix,
                interval_precision: None,
            });
        }
        b.build().expect("static type info builds")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_type() {
        let all = xdbc_type_info().record_batch(None).unwrap();
        assert_eq!(all.num_rows(), 13);
        let one = xdbc_type_info()
            .record_batch(Some(XdbcDataType::XdbcBigint as i32))
            .unwrap();
        assert_eq!(one.num_rows(), 1);
    }
}

//! Flight session actions (SetSessionOptions, GetSessionOptions, CloseSession).
//!
//! arrow-flight 59 has no types for them, so the messages of Flight.proto are declared here.
//! The server keeps no session state: the only catalog and schema are accepted (the JDBC driver
//! sends them at connect when the URL names them), anything else is reported per option.

use std::collections::HashMap;

use prost::Message;

use stockflight_query::{CATALOG, SCHEMA};

/// Action type names.
pub const SET_SESSION_OPTIONS: &str = "SetSessionOptions";
/// Action type names.
pub const GET_SESSION_OPTIONS: &str = "GetSessionOptions";
/// Action type names.
pub const CLOSE_SESSION: &str = "CloseSession";
/// Action type names.
pub const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

/// `SessionOptionValue`.
#[derive(Clone, PartialEq, Message)]
pub struct SessionOptionValue {
    /// The value.
    #[prost(oneof = "OptionValue", tags = "1, 2, 3, 4, 5")]
    pub option_value: Option<OptionValue>,
}

/// `SessionOptionValue.option_value` (variant names as in Flight.proto).
#[allow(clippy::enum_variant_names)]
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum OptionValue {
    /// A string.
    #[prost(string, tag = "1")]
    StringValue(String),
    /// A boolean.
    #[prost(bool, tag = "2")]
    BoolValue(bool),
    /// A 64-bit integer.
    #[prost(sfixed64, tag = "3")]
    Int64Value(i64),
    /// A double.
    #[prost(double, tag = "4")]
    DoubleValue(f64),
    /// A list of strings.
    #[prost(message, tag = "5")]
    StringListValue(StringListValue),
}

/// `SessionOptionValue.StringListValue`.
#[derive(Clone, PartialEq, Message)]
pub struct StringListValue {
    /// The strings.
    #[prost(string, repeated, tag = "1")]
    pub values: Vec<String>,
}

/// `SetSessionOptionsRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct SetSessionOptionsRequest {
    /// Options to set.
    #[prost(map = "string, message", tag = "1")]
    pub session_options: HashMap<String, SessionOptionValue>,
}

/// `SetSessionOptionsResult`.
#[derive(Clone, PartialEq, Message)]
pub struct SetSessionOptionsResult {
    /// Options that could not be set, by name.
    #[prost(map = "string, message", tag = "1")]
    pub errors: HashMap<String, SetSessionOptionsError>,
}

/// `SetSessionOptionsResult.Error`.
#[derive(Clone, PartialEq, Message)]
pub struct SetSessionOptionsError {
    /// 1: invalid name, 2: invalid value, 3: error.
    #[prost(int32, tag = "1")]
    pub value: i32,
}

const INVALID_NAME: i32 = 1;
const INVALID_VALUE: i32 = 2;

/// `GetSessionOptionsResult`.
#[derive(Clone, PartialEq, Message)]
pub struct GetSessionOptionsResult {
    /// Current options.
    #[prost(map = "string, message", tag = "1")]
    pub session_options: HashMap<String, SessionOptionValue>,
}

/// `CloseSessionResult`.
#[derive(Clone, PartialEq, Message)]
pub struct CloseSessionResult {
    /// 1: closed.
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// Answers SetSessionOptions: `catalog` and `schema` may name ours; other options are unknown.
pub fn set_options(request: &[u8]) -> Result<Vec<u8>, prost::DecodeError> {
    let request = SetSessionOptionsRequest::decode(request)?;
    let mut errors = HashMap::new();
    for (name, value) in request.session_options {
        let expected = match name.to_ascii_lowercase().as_str() {
            "catalog" => CATALOG,
            "schema" => SCHEMA,
            _ => {
                errors.insert(name, SetSessionOptionsError { value: INVALID_NAME });
                continue;
            }
        };
        let ok = matches!(&value.option_value, Some(OptionValue::StringValue(v)) if v.eq_ignore_ascii_case(expected));
        if !ok {
            errors.insert(name, SetSessionOptionsError { value: INVALID_VALUE });
        }
    }
    Ok(SetSessionOptionsResult { errors }.encode_to_vec())
}

/// Answers GetSessionOptions: the fixed catalog and schema.
pub fn get_options() -> Vec<u8> {
    let string = |s: &str| SessionOptionValue {
        option_value: Some(OptionValue::StringValue(s.into())),
    };
    GetSessionOptionsResult {
        session_options: HashMap::from([("catalog".into(), string(CATALOG)), ("schema".into(), string(SCHEMA))]),
    }
    .encode_to_vec()
}

/// Answers CloseSession: closed (there is nothing to release).
pub fn close() -> Vec<u8> {
    CloseSessionResult { status: 1 }.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_our_catalog_and_reports_others() {
        let string = |s: &str| SessionOptionValue {
            option_value: Some(OptionValue::StringValue(s.into())),
        };
        let request = SetSessionOptionsRequest {
            session_options: HashMap::from([
                ("catalog".into(), string("stockflight")),
                ("schema".into(), string("other")),
                ("timezone".into(), string("UTC")),
            ]),
        };
        let result =
            SetSessionOptionsResult::decode(set_options(&request.encode_to_vec()).unwrap().as_slice()).unwrap();
        assert_eq!(result.errors.len(), 2);
        assert_eq!(result.errors["schema"].value, INVALID_VALUE);
        assert_eq!(result.errors["timezone"].value, INVALID_NAME);
    }
}

//! Target `sherpa_call`: the API call envelope and parameter decoding.

use serde_json::Value;

use crate::protocol::sherpa::{self, Code, DeserializeTuple, MAX_PARAM_ERROR, Params};

/// Name used for the function in messages.
const F: &str = "Fuzz";

/// Properties:
/// - [`sherpa::parse_call`] accepts exactly what a plain `serde_json` parse
///   says is an object whose `params` is a list or `null`; refusals are
///   `sherpa:badRequest` (HTTP 400);
/// - decoding into tuples of several shapes never panics: a wrong count is
///   `sherpa:badParams` with the exact count message, a wrong type is
///   `sherpa:badParams` naming the parameter, with a bounded message (no
///   unbounded echo of the input);
/// - the error and result bodies are JSON that reads back to what went in.
pub fn sherpa_call(data: &[u8]) {
    let oracle: Option<usize> = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(m)) => match m.get("params") {
            Some(Value::Array(a)) => Some(a.len()),
            Some(Value::Null) => Some(0),
            _ => None,
        },
        _ => None,
    };
    let params = match sherpa::parse_call(data) {
        Ok(p) => p,
        Err(e) => {
            // serde_json's own recursion limit can refuse what the oracle
            // (same parser, same limit) refuses too; so they always agree.
            assert_eq!(oracle, None, "parse_call refused a valid call");
            assert_eq!(e.code, Code::BadRequest);
            assert_eq!(e.code.http_status(), 400);
            check_error_body(e.code, &e.message);
            return;
        }
    };
    let n = oracle.expect("parse_call accepted an invalid call");

    shape::<()>(&params, n);
    shape::<(String,)>(&params, n);
    shape::<(String, String)>(&params, n);
    shape::<(String, String, String)>(&params, n);
    shape::<(u64, bool)>(&params, n);
    shape::<(Vec<String>,)>(&params, n);
    shape::<(Option<String>, i64)>(&params, n);
    let all4 = shape::<(Value, Value, Value, Value)>(&params, n);
    assert_eq!(
        all4,
        n == 4,
        "four Values decode exactly when there are four"
    );

    let values = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(mut m)) => m.remove("params").unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let body = sherpa::result_body(&values).expect("a Value serializes");
    let back: Value = serde_json::from_slice(&body).expect("result body is JSON");
    assert_eq!(back.as_object().map(|m| m.len()), Some(1));
    let len = |v: &Value| v.as_array().map_or(0, Vec::len);
    assert_eq!(len(&back["result"]), n);
}

/// Decodes `params` as `T`; checks the error against the count `n`.
/// Returns whether it decoded.
fn shape<T: DeserializeTuple>(params: &Params, n: usize) -> bool {
    match params.clone().decode::<T>(F) {
        Ok(_) => {
            assert_eq!(n, T::COUNT);
            true
        }
        Err(e) => {
            assert_eq!(e.code, Code::BadParams);
            if n == T::COUNT {
                assert!(e.message.starts_with("Fuzz: parameter "), "{}", e.message);
                assert!(
                    e.message.len() <= F.len() + MAX_PARAM_ERROR + 32,
                    "unbounded message: {} bytes",
                    e.message.len()
                );
            } else {
                assert_eq!(
                    e.message,
                    format!("Fuzz: expected {} parameter(s), got {n}", T::COUNT)
                );
            }
            check_error_body(e.code, &e.message);
            false
        }
    }
}

/// The error body is `{"error":{"code","message"}}` with these values.
fn check_error_body(code: Code, message: &str) {
    let body = sherpa::error_body(code, message);
    let v: Value = serde_json::from_slice(&body).expect("error body is JSON");
    assert_eq!(v["error"]["code"], Value::from(code.as_str()));
    assert_eq!(v["error"]["message"], Value::from(message));
}

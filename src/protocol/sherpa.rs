//! The sherpa JSON call envelope and its error codes.
//!
//! Owns the wire shape of API calls: the request body `{"params": [...]}`
//! (`null` counts as an empty list), the answer `{"result": ...}` or
//! `{"error": {"code", "message"}}`, the stable error codes ([`Code`]) and
//! parameter decoding with precise `sherpa:badParams` messages ([`Params`]).
//!
//! Never: decides HTTP status codes beyond [`Code::http_status`], or includes
//! internal error details in a message for a `server:error`.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Stable public error codes. Each maps to exactly one string on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Credentials missing.
    NoAuth,
    /// Credentials present but not valid.
    BadAuth,
    /// Wrong username/password, or login disabled.
    LoginFailed,
    /// A bad request by the user.
    UserError,
    /// Our fault.
    ServerError,
    /// The body is not a JSON object with a `params` list, or wrong content type.
    BadRequest,
    /// Wrong number or types of parameters.
    BadParams,
    /// Unknown function.
    BadFunction,
}

impl Code {
    /// The code's text on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NoAuth => "user:noAuth",
            Code::BadAuth => "user:badAuth",
            Code::LoginFailed => "user:loginFailed",
            Code::UserError => "user:error",
            Code::ServerError => "server:error",
            Code::BadRequest => "sherpa:badRequest",
            Code::BadParams => "sherpa:badParams",
            Code::BadFunction => "sherpa:badFunction",
        }
    }

    /// The HTTP status an error with this code is sent with: 404 for an unknown
    /// function, 400 for a malformed envelope, 200 for everything else (the
    /// sherpa convention: the error is in the JSON body).
    pub fn http_status(self) -> u16 {
        match self {
            Code::BadFunction => 404,
            Code::BadRequest => 400,
            _ => 200,
        }
    }
}

/// An error answer of an API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The stable code.
    pub code: Code,
    /// A message for people; never internal details for `server:error`.
    pub message: String,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// A `user:error`.
    pub fn user(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::UserError, message)
    }

    /// A `server:error` with a generic message; the caller logs the details.
    pub fn server() -> ApiError {
        ApiError::new(Code::ServerError, "internal server error")
    }

    /// A `sherpa:badParams`.
    pub fn bad_params(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::BadParams, message)
    }

    /// The JSON body of this error.
    pub fn to_json(&self) -> Vec<u8> {
        error_body(self.code, &self.message)
    }
}

/// `{"error":{"code":...,"message":...}}`.
pub fn error_body(code: Code, message: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct E<'a> {
        code: &'a str,
        message: &'a str,
    }
    #[derive(Serialize)]
    struct B<'a> {
        error: E<'a>,
    }
    serde_json::to_vec(&B {
        error: E {
            code: code.as_str(),
            message,
        },
    })
    .unwrap_or_else(|_| {
        b"{\"error\":{\"code\":\"server:error\",\"message\":\"encoding error\"}}".to_vec()
    })
}

/// `{"result":...}`.
pub fn result_body<T: Serialize>(result: &T) -> Result<Vec<u8>, ApiError> {
    #[derive(Serialize)]
    struct R<'a, T> {
        result: &'a T,
    }
    serde_json::to_vec(&R { result }).map_err(|_| ApiError::server())
}

/// Whether a `Content-Type` header value is JSON (`application/json`, with any
/// parameters such as `charset`).
pub fn is_json_content_type(v: Option<&[u8]>) -> bool {
    let Some(v) = v else { return false };
    let essence = v.split(|&b| b == b';').next().unwrap_or_default();
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/json")
}

/// The decoded parameters of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Params(Vec<Value>);

/// Parses a call body: a JSON object whose `params` is a list or `null`. Other
/// members are ignored. JSON nesting is bounded by the parser's recursion limit.
pub fn parse_call(body: &[u8]) -> Result<Params, ApiError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        // A well-formed value of another type is refused by the visitor
        // (a data error); anything else is not valid JSON.
        if e.classify() == serde_json::error::Category::Data {
            ApiError::new(Code::BadRequest, "request body must be a JSON object")
        } else {
            ApiError::new(Code::BadRequest, format!("invalid JSON request body: {e}"))
        }
    })?;
    match envelope.params {
        Some(Value::Array(a)) => Ok(Params(a)),
        Some(Value::Null) => Ok(Params(Vec::new())),
        None => Err(ApiError::new(
            Code::BadRequest,
            "missing \"params\" in request body",
        )),
        Some(_) => Err(ApiError::new(Code::BadRequest, "\"params\" must be a list")),
    }
}

/// A call body read straight into its one member of interest, without
/// building the whole object: the same answers as parsing it as a JSON
/// object (the last `params` wins; other members are parsed, so they meet
/// the same nesting limit, and dropped).
struct Envelope {
    params: Option<Value>,
}

impl<'de> serde::Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Envelope, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = Envelope;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Envelope, A::Error> {
                let mut params = None;
                while let Some(IsParams(is)) = m.next_key()? {
                    let v: Value = m.next_value()?;
                    if is {
                        params = Some(v);
                    }
                }
                Ok(Envelope { params })
            }
        }
        d.deserialize_map(Members)
    }
}

/// Whether a member name is `params` (escapes decoded, nothing allocated
/// when there are none).
struct IsParams(bool);

impl<'de> serde::Deserialize<'de> for IsParams {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IsParams, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = IsParams;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IsParams, E> {
                Ok(IsParams(v == "params"))
            }
        }
        d.deserialize_str(Name)
    }
}

impl Params {
    /// Parameters from a list of values (tests, tools).
    pub fn from_values(v: Vec<Value>) -> Params {
        Params(v)
    }

    /// Checks the count and decodes each parameter as `T`.
    pub fn decode<T: DeserializeTuple>(self, function: &str) -> Result<T, ApiError> {
        if self.0.len() != T::COUNT {
            return Err(ApiError::bad_params(format!(
                "{function}: expected {} parameter(s), got {}",
                T::COUNT,
                self.0.len()
            )));
        }
        T::from_values(self.0, function)
    }
}

/// A tuple of parameter types that [`Params::decode`] fills.
pub trait DeserializeTuple: Sized {
    /// Number of parameters.
    const COUNT: usize;
    /// Decodes exactly `COUNT` values.
    fn from_values(v: Vec<Value>, function: &str) -> Result<Self, ApiError>;
}

/// Longest decoding error kept in a `sherpa:badParams` message, in bytes:
/// serde's messages quote the offending value, and an answer must not echo
/// a megabyte of the request back.
pub const MAX_PARAM_ERROR: usize = 200;

fn one<T: DeserializeOwned>(v: Value, i: usize, function: &str) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| {
        let mut e = e.to_string();
        if e.len() > MAX_PARAM_ERROR {
            let mut end = MAX_PARAM_ERROR;
            while !e.is_char_boundary(end) {
                end -= 1;
            }
            e.truncate(end);
            e.push_str("...");
        }
        ApiError::bad_params(format!("{function}: parameter {i}: {e}"))
    })
}

impl DeserializeTuple for () {
    const COUNT: usize = 0;
    fn from_values(_: Vec<Value>, _: &str) -> Result<(), ApiError> {
        Ok(())
    }
}

macro_rules! tuple_impl {
    ($n:expr; $($t:ident),+) => {
        impl<$($t: DeserializeOwned),+> DeserializeTuple for ($($t,)+) {
            const COUNT: usize = $n;
            #[allow(non_snake_case)]
            fn from_values(v: Vec<Value>, function: &str) -> Result<Self, ApiError> {
                let mut it = v.into_iter().enumerate();
                $(
                    let $t: $t = match it.next() {
                        Some((i, v)) => one(v, i, function)?,
                        None => return Err(ApiError::bad_params(format!("{function}: missing parameter"))),
                    };
                )+
                Ok(($($t,)+))
            }
        }
    };
}
tuple_impl!(1; A);
tuple_impl!(2; A, B);
tuple_impl!(3; A, B, C);
tuple_impl!(4; A, B, C, D);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope() {
        assert_eq!(parse_call(br#"{"params":[]}"#), Ok(Params(vec![])));
        assert_eq!(parse_call(br#"{"params":null}"#), Ok(Params(vec![])));
        assert_eq!(
            parse_call(br#"{"params":[1,"a"],"x":1}"#).map(|p| p.0.len()),
            Ok(2)
        );
        for bad in [&b"[]"[..], b"{}", b"{\"params\":{}}", b"nope", b"", b"\xff"] {
            let e = parse_call(bad).expect_err("bad");
            assert_eq!(e.code, Code::BadRequest, "{bad:?}");
        }
    }

    #[test]
    fn envelope_answers_as_a_json_object_would() {
        let msg = |b: &[u8]| parse_call(b).expect_err("bad").message;
        for not_object in [&b"[]"[..], b"null", b"\"params\"", b" 12 "] {
            assert_eq!(msg(not_object), "request body must be a JSON object");
        }
        assert!(msg(b"{").starts_with("invalid JSON request body: "));
        assert!(msg(b"{} x").starts_with("invalid JSON request body: trailing"));
        assert_eq!(msg(b"{}"), "missing \"params\" in request body");
        assert_eq!(msg(br#"{"params":1}"#), "\"params\" must be a list");
        // Escapes in the name are decoded; the last member of a name wins.
        assert_eq!(
            parse_call(br#"{"par\u0061ms":[1]}"#).map(|p| p.0.len()),
            Ok(1)
        );
        assert_eq!(
            parse_call(br#"{"params":[1],"params":[1,2]}"#).map(|p| p.0.len()),
            Ok(2)
        );
        // Other members obey the same nesting limit.
        let deep = format!(
            r#"{{"x":{}{},"params":[]}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(msg(deep.as_bytes()).contains("recursion limit"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut s = String::from("{\"params\":[");
        s.push_str(&"[".repeat(100_000));
        let e = parse_call(s.as_bytes()).expect_err("too deep");
        assert_eq!(e.code, Code::BadRequest);
    }

    #[test]
    fn params_decode() {
        let p = parse_call(br#"{"params":["a","b","c"]}"#).expect("ok");
        let (a, b, c): (String, String, String) = p.decode("Login").expect("3 strings");
        assert_eq!((a.as_str(), b.as_str(), c.as_str()), ("a", "b", "c"));
        let p = parse_call(br#"{"params":["a"]}"#).expect("ok");
        let e = p.decode::<(String, String)>("X").expect_err("count");
        assert_eq!(e.code, Code::BadParams);
        assert_eq!(e.message, "X: expected 2 parameter(s), got 1");
        let p = parse_call(br#"{"params":[1]}"#).expect("ok");
        let e = p.decode::<(String,)>("X").expect_err("type");
        assert_eq!(e.code, Code::BadParams);
    }

    #[test]
    fn long_values_are_not_echoed_whole() {
        let long = "é".repeat(10_000);
        let p = Params::from_values(vec![Value::from(long)]);
        let e = p.decode::<(u64,)>("X").expect_err("type");
        assert_eq!(e.code, Code::BadParams);
        assert!(
            e.message
                .starts_with("X: parameter 0: invalid type: string")
        );
        assert!(
            e.message.len() <= MAX_PARAM_ERROR + 32,
            "{}",
            e.message.len()
        );
        assert!(e.message.ends_with("..."));
    }

    #[test]
    fn bodies() {
        assert_eq!(
            error_body(Code::NoAuth, "missing required csrf header"),
            br#"{"error":{"code":"user:noAuth","message":"missing required csrf header"}}"#
                .to_vec()
        );
        assert_eq!(
            result_body(&"x").expect("json"),
            br#"{"result":"x"}"#.to_vec()
        );
        assert_eq!(
            result_body(&()).expect("json"),
            br#"{"result":null}"#.to_vec()
        );
    }

    #[test]
    fn content_type() {
        assert!(is_json_content_type(Some(b"application/json")));
        assert!(is_json_content_type(Some(
            b"Application/JSON; charset=utf-8"
        )));
        assert!(!is_json_content_type(Some(b"text/plain")));
        assert!(!is_json_content_type(None));
    }
}

//! The wire format of a call, free of the server's state: the path (`/v2.23/tasks.get_by_id`), query parameters,
//! the JSON (or JSON-lines) body, the headers clients authenticate with, and the envelope every answer is wrapped
//! in.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// Name of the cookie `auth.login` sets, read as a bearer token when a call has no `Authorization` header.
pub(crate) const SESSION_COOKIE: &str = "clearml_token_basic";

/// Splits `/v2.23/tasks.get_by_id` (version optional, trailing slash allowed) as the server's path regex does.
pub(crate) fn parse_path(path: &str) -> Option<(Option<&str>, &str)> {
    let p = path.strip_prefix('/').unwrap_or(path);
    let p = p.strip_suffix('/').unwrap_or(p);
    let (version, name) = match p.split_once('/') {
        Some((v, n)) => (Some(v.strip_prefix('v')?), n),
        None => (None, p),
    };
    if let Some(v) = version {
        let ok = !v.is_empty()
            && v.chars().all(|c| c.is_ascii_digit() || c == '.')
            && v.matches('.').count() <= 1;
        if !ok
            || !v.starts_with(|c: char| c.is_ascii_digit())
            || !v.ends_with(|c: char| c.is_ascii_digit())
        {
            return None;
        }
    }
    let (service, action) = name.split_once('.')?;
    let ident = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    (ident(service) && ident(action)).then_some((version, name))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters as the server reads them: numbers and `true`/`false` are converted, the rest stay strings.
fn query_params(query: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        let value = if !v.is_empty() && v.replacen('.', "", 1).chars().all(|c| c.is_ascii_digit()) {
            if v.contains('.') {
                v.parse::<f64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(v))
            } else {
                v.parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(v))
            }
        } else if v.eq_ignore_ascii_case("true") {
            Value::Bool(true)
        } else if v.eq_ignore_ascii_case("false") {
            Value::Bool(false)
        } else {
            Value::String(v)
        };
        m.insert(k, value);
    }
    m
}

/// The request data: the JSON body (JSON lines for batches) with query parameters filling in absent keys.
pub(crate) fn request_data(
    headers: &HeaderMap,
    body: &[u8],
    query: Option<&str>,
) -> Result<Value, ApiError> {
    let is_lines = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json-lines"));
    let query = query_params(query);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(query));
    }
    if is_lines {
        let mut items = Vec::new();
        for (i, line) in body.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let item: Value = serde_json::from_slice(line)
                .map_err(|e| ApiError::bad_request(format!("{e} in batch item #{i}")))?;
            items.push(item);
        }
        return Ok(Value::Array(items));
    }
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Failed to decode JSON object: {e}")))?;
    Ok(match body {
        Value::Object(mut m) => {
            for (k, v) in query {
                m.entry(k).or_insert(v);
            }
            Value::Object(m)
        }
        Value::Null => Value::Object(query),
        Value::Array(a) if a.is_empty() => Value::Object(query),
        other => other,
    })
}

pub(crate) struct Meta<'a> {
    pub(crate) trx: String,
    pub(crate) endpoint: Option<&'a str>,
    pub(crate) requested: Option<String>,
    pub(crate) actual: Option<String>,
}

pub(crate) fn envelope(
    meta: &Meta<'_>,
    result: Result<Value, ApiError>,
    cookie: Option<&str>,
) -> Response {
    let id = format!("{:032x}", fastrand::u128(..));
    let (code, subcode, msg, data) = match result {
        Ok(data) => (200, 0, "OK".to_owned(), data),
        Err(e) => (e.code, e.subcode, e.msg, json!({})),
    };
    let body = json!({
        "meta": {
            "id": id,
            "trx": if meta.trx.is_empty() { id.clone() } else { meta.trx.clone() },
            "endpoint": {
                "name": meta.endpoint.unwrap_or(""),
                "requested_version": meta.requested,
                "actual_version": meta.actual,
            },
            "result_code": code,
            "result_subcode": subcode,
            "result_msg": msg,
            "error_stack": Value::Null,
            "error_data": {},
        },
        "data": data,
    });
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(token) = cookie
        && let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly"))
    {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| headers.get(*n).and_then(|v| v.to_str().ok()))
}

pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_like_the_server_regex() {
        assert_eq!(
            parse_path("/v2.23/tasks.get_by_id"),
            Some((Some("2.23"), "tasks.get_by_id"))
        );
        assert_eq!(parse_path("/auth.login"), Some((None, "auth.login")));
        assert_eq!(
            parse_path("/v2/queues.get_all/"),
            Some((Some("2"), "queues.get_all"))
        );
        assert_eq!(parse_path("/tasks"), None);
        assert_eq!(parse_path("/v2.23/tasks.get-by-id"), None);
        assert_eq!(parse_path("/api/v2.23/tasks.get_by_id"), None);
    }

    #[test]
    fn query_values_are_typed() {
        let m = query_params(Some("expiration_sec=100&force=true&name=a%20b&f=1.5"));
        assert_eq!(m["expiration_sec"], json!(100));
        assert_eq!(m["force"], json!(true));
        assert_eq!(m["name"], json!("a b"));
        assert_eq!(m["f"], json!(1.5));
    }

    #[test]
    fn bodies_decode_or_fail_with_400_0() {
        let h = HeaderMap::new();
        assert_eq!(request_data(&h, b"", Some("a=1")).unwrap(), json!({"a": 1}));
        assert_eq!(
            request_data(&h, br#"{"a":2}"#, Some("a=1&b=x")).unwrap(),
            json!({"a": 2, "b": "x"})
        );
        let err = request_data(&h, b"{not json", None).unwrap_err();
        assert_eq!((err.code, err.subcode), (400, 0));
        let mut lines = HeaderMap::new();
        lines.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json-lines"),
        );
        assert_eq!(
            request_data(&lines, b"{\"a\":1}\n{\"b\":2}\n", None).unwrap(),
            json!([{"a":1},{"b":2}])
        );
    }
}

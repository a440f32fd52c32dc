//! How the proxy answers a request it lets through: forwarded to the apiserver (streamed both ways), or, for a
//! fault, with a `Status` error written as the apiserver writes them.

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::{self, connect::Connect};

/// The apiserver as the proxy reaches it: the control plane's URL and a pooled TLS client trusting its CA.
#[derive(Clone)]
pub(super) struct Upstream<C> {
    /// `https://127.0.0.1:<port>`, without a trailing `/`: the request's path and query are appended.
    pub(super) server: String,
    /// Pooled keep-alive connections, so a test's requests do not each pay a TLS handshake.
    pub(super) client: legacy::Client<C, Incoming>,
}

/// A forwarded answer streams the apiserver's body as it comes (watches); a fault's is one JSON object.
pub(super) type ProxyBody = Either<Incoming, Full<Bytes>>;

/// Send the request on to the apiserver and stream its answer back; a 502 `Status` when it cannot be reached (the
/// control plane itself is down, which is not an outage the proxy made).
pub(super) async fn forward<C>(
    req: Request<Incoming>,
    path: &str,
    upstream: &Upstream<C>,
) -> Response<ProxyBody>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let method = req.method().clone();
    let (mut parts, body) = req.into_parts();
    parts.uri = match format!("{}{path}", upstream.server).parse() {
        Ok(uri) => uri,
        Err(e) => return status_response(400, &method, path, &format!("bad request URI: {e}")),
    };
    parts.version = http::Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    // The client sets Host from the upstream URI.
    parts.headers.remove(header::HOST);
    match upstream
        .client
        .request(Request::from_parts(parts, body))
        .await
    {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Either::Left(body))
        }
        Err(e) => {
            tracing::warn!(%method, %path, error = %e, "fault proxy: the apiserver is unreachable");
            status_response(
                502,
                &method,
                path,
                &format!("the fault proxy cannot reach the apiserver: {e}"),
            )
        }
    }
}

/// Remove the headers that describe one hop (RFC 9110 §7.6.1); hyper frames each side itself.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .filter(|s| !s.is_empty())
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// The Kubernetes `StatusReason` an apiserver gives with `status` (see [`FaultProxy::inject`]).
fn reason(status: u16, method: &Method) -> &'static str {
    match status {
        409 if method == Method::POST => "AlreadyExists",
        409 => "Conflict",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ if status < 500 => "BadRequest",
        _ => "InternalError",
    }
}

/// A response as the apiserver writes it for an error: a `Status` object with the code and its reason.
pub(super) fn status_response(
    status: u16,
    method: &Method,
    path: &str,
    why: &str,
) -> Response<ProxyBody> {
    let reason = reason(status, method);
    let mut body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("{reason} ({status}) for {method} {path}: {why}"),
        "reason": reason,
        "code": status,
    });
    if status == 429 {
        body["details"] = serde_json::json!({"retryAfterSeconds": 1});
    }
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(body.to_string()))));
    *resp.status_mut() = code;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == 429 {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_follow_the_apiserver() {
        assert_eq!(reason(409, &Method::POST), "AlreadyExists");
        assert_eq!(reason(409, &Method::PUT), "Conflict");
        assert_eq!(reason(422, &Method::POST), "Invalid");
        assert_eq!(reason(429, &Method::GET), "TooManyRequests");
        assert_eq!(reason(500, &Method::GET), "InternalError");
        assert_eq!(reason(503, &Method::GET), "ServiceUnavailable");
        assert_eq!(reason(418, &Method::GET), "BadRequest");
        assert_eq!(reason(599, &Method::GET), "InternalError");
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-hop"),
        );
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::AUTHORIZATION));
    }
}

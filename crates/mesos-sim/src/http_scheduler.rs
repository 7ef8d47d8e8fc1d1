//! `POST /api/v1/scheduler` (and `/master/api/v1/scheduler`): the checks, in
//! the order the Mesos master makes them, then the call.

// A refusal is an HTTP response built once per refused request; boxing it
// would only add an allocation.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mesos_proto::v1::scheduler::{self as sched, call};
use mesos_proto::{Message, CONTENT_TYPE_PROTOBUF, STREAM_ID_HEADER};
use tokio::sync::mpsc;

use crate::master;
use crate::required;
use crate::state::SharedRef;

const CONTENT_TYPE_JSON: &str = "application/json";

pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let body: String = body.into();
    (status, body).into_response()
}

/// 405 as libprocess words it.
pub(crate) fn method_not_allowed(method: &Method) -> Response {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Expecting one of {{ 'POST' }}, but received '{method}'"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

/// Reads a protobuf body, answering as Mesos does for a missing or
/// unsupported Content-Type or an undecodable body.
pub(crate) fn decode_body<M: Message + Default>(
    headers: &HeaderMap,
    body: &[u8],
    kind: required::Kind,
) -> Result<M, Response> {
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        ));
    };
    let content_type = content_type.to_str().unwrap_or_default();
    if content_type == CONTENT_TYPE_PROTOBUF {
        let parse_error = || {
            text(
                StatusCode::BAD_REQUEST,
                "Failed to parse body into Call protobuf",
            )
        };
        let message = M::decode(body).map_err(|_| parse_error())?;
        if let Some(path) = required::missing(kind, body) {
            tracing::warn!(field = %path, "call lacks a required field; Mesos fails to parse it");
            return Err(parse_error());
        }
        return Ok(message);
    }
    if content_type == CONTENT_TYPE_JSON {
        // Mesos accepts JSON too; the simulator does not (see the README).
        return Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "mesos-sim accepts only 'application/x-protobuf' calls; 'application/json' is not supported",
        ));
    }
    Err(text(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Expecting 'Content-Type' of application/json or application/x-protobuf",
    ))
}

/// Whether the SUBSCRIBE's Accept header allows protobuf (no header: anything).
pub(crate) fn accepts_protobuf(headers: &HeaderMap) -> Result<(), Response> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(());
    };
    let accept = accept.to_str().unwrap_or_default();
    let ok = accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or_default().trim();
        media == CONTENT_TYPE_PROTOBUF || media == "*/*" || media == "application/*"
    });
    if ok {
        return Ok(());
    }
    if accept.contains(CONTENT_TYPE_JSON) {
        return Err(text(
            StatusCode::NOT_ACCEPTABLE,
            "mesos-sim streams only 'application/x-protobuf'; 'application/json' is not supported",
        ));
    }
    Err(text(
        StatusCode::NOT_ACCEPTABLE,
        "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
    ))
}

/// A 200 RecordIO stream fed by the returned sender.
pub(crate) fn stream_response(stream_id: Option<&str>) -> (mpsc::UnboundedSender<Bytes>, Response) {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_PROTOBUF),
    );
    if let Some(id) = stream_id {
        if let Ok(v) = HeaderValue::from_str(id) {
            response.headers_mut().insert(STREAM_ID_HEADER, v);
        }
    }
    (tx, response)
}

/// The realm of Mesos's HTTP framework authenticator.
const AUTHENTICATION_REALM: &str = "mesos-master-scheduler";

/// libprocess's Basic authenticator: the principal of a valid
/// `Authorization: Basic` header, else 401 with an empty body.
fn authenticate(headers: &HeaderMap, credentials: &[(String, String)]) -> Result<String, Response> {
    use base64::Engine as _;
    let unauthorized = || {
        let mut r = text(StatusCode::UNAUTHORIZED, "");
        if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{AUTHENTICATION_REALM}\"")) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let parts: Vec<&str> = value.split(' ').collect();
    let [scheme, encoded] = parts.as_slice() else {
        return Err(unauthorized());
    };
    if *scheme != "Basic" {
        return Err(unauthorized());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .ok_or_else(unauthorized)?;
    let pair: Vec<&str> = decoded.split(':').collect();
    let [principal, secret] = pair.as_slice() else {
        return Err(unauthorized());
    };
    if credentials
        .iter()
        .any(|(p, s)| p == principal && s == secret)
    {
        Ok((*principal).to_owned())
    } else {
        Err(unauthorized())
    }
}

/// The checks of `validation::scheduler::call::validate`.
fn validate(c: &sched::Call, principal: Option<&str>) -> Result<call::Type, String> {
    let Some(kind) = c.r#type.and_then(|t| call::Type::try_from(t).ok()) else {
        return Err("Expecting 'type' to be present".into());
    };
    if kind == call::Type::Subscribe {
        let Some(subscribe) = &c.subscribe else {
            return Err("Expecting 'subscribe' to be present".into());
        };
        let info = &subscribe.framework_info;
        if let (Some(authenticated), Some(declared)) = (principal, info.principal.as_deref()) {
            if authenticated != declared {
                return Err(format!(
                    "Authenticated principal '{authenticated}' does not match principal '{declared}' set in `FrameworkInfo`"
                ));
            }
        }
        if info.id != c.framework_id {
            return Err("'framework_id' differs from 'subscribe.framework_info.id'".into());
        }
        return Ok(kind);
    }
    if c.framework_id.is_none() {
        return Err("Expecting 'framework_id' to be present".into());
    }
    if !master::has_call_field(c, kind) {
        let field = master::call_field(kind).unwrap_or("?");
        return Err(format!("Expecting '{field}' to be present"));
    }
    if let Some(ack) = &c.acknowledge {
        if kind == call::Type::Acknowledge && ack.uuid.len() != 16 {
            return Err(format!(
                "Not a valid UUID: expecting 16 bytes, got {}",
                ack.uuid.len()
            ));
        }
    }
    Ok(kind)
}

pub(crate) async fn handle(
    State(shared): State<SharedRef>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // libprocess authenticates before the master's handler runs.
    let principal = if shared.config.framework_credentials.is_empty() {
        None
    } else {
        match authenticate(&headers, &shared.config.framework_credentials) {
            Ok(p) => Some(p),
            Err(r) => return r,
        }
    };
    if let Some(leader) = &shared.config.redirect_to_leader {
        let location = format!("//{leader}{}", uri.path());
        let mut r = text(StatusCode::TEMPORARY_REDIRECT, "");
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    }
    if method != Method::POST {
        return method_not_allowed(&method);
    }
    let c: sched::Call = match decode_body(&headers, &body, required::Kind::SchedulerCall) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let kind = match validate(&c, principal.as_deref()) {
        Ok(kind) => kind,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Failed to validate scheduler::Call: {e}"),
            )
        }
    };
    if kind == call::Type::Subscribe {
        let mut c = c;
        // An authenticated framework without a principal gets the one it
        // authenticated with, as Mesos sets it.
        if let (Some(p), Some(s)) = (&principal, c.subscribe.as_mut()) {
            s.framework_info.principal.get_or_insert_with(|| p.clone());
        }
        return subscribe(&shared, &headers, c);
    }

    let framework_id = c.framework_id.clone().map(|f| f.value).unwrap_or_default();
    let mut st = shared.lock();
    let Some(fw) = st.frameworks.get(&framework_id) else {
        return text(StatusCode::BAD_REQUEST, "Framework cannot be found");
    };
    let Some(conn) = &fw.conn else {
        return text(StatusCode::FORBIDDEN, "Framework is not subscribed");
    };
    let Some(stream_id) = headers.get(STREAM_ID_HEADER) else {
        return text(
            StatusCode::BAD_REQUEST,
            "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
        );
    };
    let stream_id = stream_id.to_str().unwrap_or_default();
    if stream_id != conn.stream_id {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "The stream ID '{stream_id}' included in this request didn't match the stream ID currently associated with framework ID {framework_id}"
            ),
        );
    }
    let accepted = text(StatusCode::ACCEPTED, "");
    match kind {
        call::Type::Teardown => master::remove_framework(&shared, &mut st, &framework_id),
        call::Type::Accept if st.faults.lose_accepts > 0 => {
            st.faults.lose_accepts -= 1;
            tracing::warn!(framework_id, "losing an ACCEPT (fault)");
        }
        call::Type::Accept => {
            if let Some(a) = c.accept {
                master::accept(&shared, &mut st, &framework_id, a);
            }
        }
        call::Type::Decline => {
            if let Some(d) = &c.decline {
                master::decline(&mut st, &framework_id, d);
            }
        }
        call::Type::Revive => master::revive(&mut st, &framework_id),
        call::Type::Suppress => master::suppress(&mut st, &framework_id),
        call::Type::Kill => {
            if let Some(k) = &c.kill {
                master::kill(&shared, &mut st, &framework_id, k);
            }
        }
        call::Type::Shutdown => {
            if let Some(s) = &c.shutdown {
                master::shutdown(&shared, &mut st, &framework_id, s);
            }
        }
        call::Type::Acknowledge => {
            if let Some(a) = &c.acknowledge {
                master::acknowledge(&shared, &mut st, &framework_id, a);
            }
        }
        call::Type::Reconcile => {
            if let Some(r) = &c.reconcile {
                master::reconcile(&mut st, &framework_id, r);
            }
        }
        call::Type::Message => {
            if let Some(m) = &c.message {
                master::message(&mut st, &framework_id, m);
            }
        }
        // Accepted and ignored, as Mesos does when nothing matches.
        call::Type::Request
        | call::Type::AcceptInverseOffers
        | call::Type::DeclineInverseOffers => {}
        call::Type::Unknown => return text(StatusCode::NOT_IMPLEMENTED, ""),
        other => {
            return text(
                StatusCode::NOT_IMPLEMENTED,
                format!("mesos-sim does not implement {}", other.as_str_name()),
            )
        }
    }
    accepted
}

fn subscribe(shared: &SharedRef, headers: &HeaderMap, c: sched::Call) -> Response {
    if let Err(r) = accepts_protobuf(headers) {
        return r;
    }
    if headers.contains_key(STREAM_ID_HEADER) {
        return text(
            StatusCode::BAD_REQUEST,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header",
        );
    }
    let Some(subscribe) = c.subscribe else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting 'subscribe' to be present",
        );
    };
    let stream_id = uuid::Uuid::new_v4().to_string();
    let (tx, response) = stream_response(Some(&stream_id));
    let mut st = shared.lock();
    match master::subscribe(
        shared,
        &mut st,
        subscribe.framework_info,
        stream_id,
        tx.clone(),
    ) {
        Ok(framework_id) => {
            tracing::info!(framework_id, "framework subscribed");
        }
        Err(master::SubscribeRefusal(message)) => {
            tracing::info!(%message, "refusing subscription");
            let event = crate::state::events::error(&message);
            let _ = tx.send(mesos_proto::recordio::encode(&event.encode_to_vec()));
        }
    }
    response
}

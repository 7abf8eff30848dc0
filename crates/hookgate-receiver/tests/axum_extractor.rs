//! The axum extractor end to end: a verified request reaches the handler
//! typed and with its exact bytes; a bad one is answered before it.
#![cfg(feature = "axum")]

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use hookgate_protocol::signing::cobo_v2::Signer;
use hookgate_receiver::axum::{Receiver, Signed};
use hookgate_receiver::model::{Transaction, WebhookEvent};
use hookgate_receiver::{CallbackReply, Verifier};
use tower::ServiceExt;

const EVENT: &str = include_str!("../../../testdata/samples/v2-webhook-withdrawal-succeeded.json");
const CALLBACK: &str = include_str!("../../../testdata/samples/v2-callback-withdrawal.json");

fn app(signer: &Signer, limit: usize) -> Router {
    let verifier = Verifier::cobo_v2(&signer.public_key_hex()).unwrap();
    Router::new()
        .route(
            "/webhook",
            post(|event: Signed<WebhookEvent>| async move {
                format!(
                    "{} {} {}",
                    event.body.event_id,
                    event.raw.len(),
                    event.verified.timestamp
                )
            }),
        )
        .route(
            "/callback",
            post(|message: Signed<Transaction>| async move {
                let _ = message.body.transaction_id;
                CallbackReply::deny()
            }),
        )
        .with_state(Receiver::new(verifier).with_body_limit(limit))
}

fn request(path: &str, body: &'static str, signature: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .header("BIZ_TIMESTAMP", "1741687683400")
        .header("biz-resp-signature", signature)
        .body(Body::from(body))
        .unwrap()
}

async fn send(app: Router, request: Request<Body>) -> (StatusCode, String, String) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn a_verified_event_reaches_the_handler_typed_with_its_bytes() {
    let signer = Signer::generate();
    let signature = signer.sign(EVENT.as_bytes(), "1741687683400");
    let (status, _, body) = send(
        app(&signer, 1 << 20),
        request("/webhook", EVENT, &signature),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        format!(
            "4cf0ac10-c62e-4116-a019-8ffe8977b6fd {} 1741687683400",
            EVENT.len()
        )
    );
}

#[tokio::test]
async fn a_bad_signature_is_refused_with_401_and_a_reason() {
    let signer = Signer::generate();
    let other = Signer::generate().sign(EVENT.as_bytes(), "1741687683400");
    let (status, content_type, body) =
        send(app(&signer, 1 << 20), request("/webhook", EVENT, &other)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(content_type.starts_with("text/plain"));
    assert!(body.starts_with("signature does not match"), "{body}");
}

#[tokio::test]
async fn a_missing_signature_header_is_named() {
    let signer = Signer::generate();
    let request = Request::post("/webhook")
        .header("Biz-Timestamp", "1")
        .body(Body::from(EVENT))
        .unwrap();
    let (status, _, body) = send(app(&signer, 1 << 20), request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        "missing header `Biz-Resp-Signature` (or `BIZ_RESP_SIGNATURE`)"
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_verifying() {
    let signer = Signer::generate();
    let signature = signer.sign(EVENT.as_bytes(), "1741687683400");
    let (status, _, _) = send(app(&signer, 100), request("/webhook", EVENT, &signature)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_callback_is_answered_with_plain_deny() {
    let signer = Signer::generate();
    let signature = signer.sign(CALLBACK.as_bytes(), "1741687683400");
    let (status, content_type, body) = send(
        app(&signer, 1 << 20),
        request("/callback", CALLBACK, &signature),
    )
    .await;
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (StatusCode::OK, "text/plain", "deny")
    );
}

#[tokio::test]
async fn a_verified_body_of_the_wrong_shape_is_400() {
    let signer = Signer::generate();
    let signature = signer.sign(CALLBACK.as_bytes(), "1741687683400");
    let (status, _, body) = send(
        app(&signer, 1 << 20),
        request("/webhook", CALLBACK, &signature),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.starts_with("body is not a valid WebhookEvent"),
        "{body}"
    );
}

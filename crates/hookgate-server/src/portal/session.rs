//! Signing in and out, and the session every page runs under.
//!
//! A session is a random 256-bit id in the `hookgate_portal` cookie; the
//! store keeps its SHA-256 with the organisation, the API key (none for the
//! admin token), the form token and the expiry, so any node sharing the
//! database serves it. Signing out deletes the row: the cookie then opens
//! nothing, even if it was copied.
//!
//! The sign-in form has no session yet, so it is protected by a double
//! submit instead: the page sets a random token in a short-lived
//! `SameSite=Strict` cookie and in a hidden field, and the POST must carry
//! both, equal.

use axum::extract::{FromRequestParts, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use rand::RngCore;

use super::{see_other, view, Fields, Form, PortalError, PortalResult};
use crate::api::auth::secret_hash;
use crate::api::AppState;
use crate::now_ms;
use crate::store::PortalSession;

/// The session cookie.
pub const SESSION_COOKIE: &str = "hookgate_portal";
/// The sign-in form's double-submit cookie.
pub const SIGNIN_COOKIE: &str = "hookgate_portal_signin";
/// How long a session lasts after signing in.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;
/// How long a sign-in form stays usable.
const SIGNIN_TTL_S: i64 = 30 * 60;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal/signin", get(signin_page).post(signin))
        .route("/portal/signout", post(signout))
        .route("/portal/org", post(switch_org))
}

/// A signed-in visitor, as every page sees it.
#[derive(Clone, Debug)]
pub struct Session {
    /// SHA-256 of the cookie value: the session's key in the store.
    pub hash: String,
    /// The organisation shown.
    pub org_id: String,
    /// Its name.
    pub org_name: String,
    /// Signed in with the admin token.
    pub admin: bool,
    /// The token every form must carry back.
    pub csrf_token: String,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_signin = || Redirect::to("/portal/signin").into_response();
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_signin());
        };
        let hash = secret_hash(id);
        let stored = state
            .store
            .portal_session(hash.clone(), now_ms())
            .await
            .map_err(|e| PortalError::from(e).into_response())?;
        let Some(stored) = stored else {
            return Err(to_signin());
        };
        let org_name = match state.store.org(stored.org_id.clone()).await {
            Ok(Some(org)) => org.name,
            Ok(None) => return Err(to_signin()),
            Err(e) => return Err(PortalError::from(e).into_response()),
        };
        Ok(Session {
            hash,
            org_id: stored.org_id,
            org_name,
            admin: stored.admin,
            csrf_token: stored.csrf_token,
        })
    }
}

/// The value of cookie `name`, when the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Whether the browser reached us over HTTPS (directly or through a proxy
/// that says so): then cookies are marked `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').next().unwrap_or_default().trim() == "https");
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    forwarded_proto || forwarded
}

/// A `Set-Cookie` value for the portal: `HttpOnly`, `SameSite=Strict`,
/// scoped to `/portal`, `Secure` over HTTPS. A `max_age` of 0 deletes.
pub fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let line = format!(
        "{name}={value}; Path=/portal; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{secure}"
    );
    HeaderValue::from_str(&line).expect("cookie values are hex")
}

/// 32 random bytes as hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares without an early exit, so timing reveals nothing.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn signin_page(headers: HeaderMap) -> Response {
    signin_form(StatusCode::OK, None, over_https(&headers))
}

/// The sign-in page with a fresh double-submit token.
fn signin_form(status: StatusCode, problem: Option<&str>, secure: bool) -> Response {
    let token = random_token();
    let page = view::bare("Sign in", signin_markup(&token, problem));
    let mut response = (status, page).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGNIN_COOKIE, &token, SIGNIN_TTL_S, secure),
    );
    response
}

fn signin_markup(token: &str, problem: Option<&str>) -> Markup {
    html! {
        div.signin {
            h1 { "Sign in to Hookgate" }
            @if let Some(problem) = problem {
                p.notice.error role="alert" { (problem) }
            }
            form method="post" action="/portal/signin" {
                input type="hidden" name="csrf" value=(token);
                label for="secret" { "API key secret or admin token" }
                input #secret type="password" name="secret" autocomplete="current-password"
                    required autofocus;
                p.hint {
                    "The secret shown once when the API key was created. The admin token "
                    "opens every organisation."
                }
                button type="submit" { "Sign in" }
            }
        }
    }
}

async fn signin(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let secure = over_https(&headers);
    let fields = Fields::parse(&body);
    let sent = fields.get("csrf").unwrap_or_default();
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(sent.as_bytes(), expected.as_bytes()) {
        return PortalError::forbidden().into_response();
    }

    match start_session(&state, fields.get("secret").unwrap_or_default()).await {
        Ok(Some(session_id)) => {
            let mut response = see_other("/portal/overview");
            let headers = response.headers_mut();
            let ttl_s = SESSION_TTL_MS / 1000;
            headers.append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &session_id, ttl_s, secure),
            );
            headers.append(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, "", 0, secure));
            response
        }
        Ok(None) => {
            tracing::info!("portal: sign-in refused, unknown secret");
            signin_form(
                StatusCode::UNAUTHORIZED,
                Some("That secret opens nothing here. Check it and try again."),
                secure,
            )
        }
        Err(error) => error.into_response(),
    }
}

/// Checks `secret` and stores a session for it; its cookie value, or `None`
/// when the secret is neither an API key secret nor the admin token.
async fn start_session(state: &AppState, secret: &str) -> PortalResult<Option<String>> {
    if secret.is_empty() {
        return Ok(None);
    }
    let (org_id, api_key_id, admin) = if same(secret.as_bytes(), state.admin_token.as_bytes()) {
        let orgs = state.store.list_orgs().await?;
        let Some(first) = orgs.into_iter().next() else {
            return Err(PortalError::new(
                StatusCode::CONFLICT,
                "there is no organisation yet: create one with POST /producer/orgs",
            ));
        };
        (first.org_id, None, true)
    } else {
        match state
            .store
            .api_key_by_secret_hash(secret_hash(secret))
            .await?
        {
            Some(key) => (key.org_id, Some(key.api_key_id), false),
            None => return Ok(None),
        }
    };

    let session_id = random_token();
    let now = now_ms();
    state
        .store
        .create_portal_session(PortalSession {
            session_hash: secret_hash(&session_id),
            org_id,
            api_key_id,
            admin,
            csrf_token: random_token(),
            created_timestamp: now,
            expires_timestamp: now + SESSION_TTL_MS,
        })
        .await?;
    Ok(Some(session_id))
}

async fn signout(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
    if let Err(error) = state.store.delete_portal_session(form.session.hash).await {
        return PortalError::from(error).into_response();
    }
    let mut response = see_other("/portal/signin");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, over_https(&headers)),
    );
    response
}

async fn switch_org(State(state): State<AppState>, form: Form) -> PortalResult {
    if !form.session.admin {
        return Err(PortalError::new(
            StatusCode::FORBIDDEN,
            "only the admin token may switch organisation",
        ));
    }
    let org_id = form
        .fields
        .get("org_id")
        .ok_or_else(|| PortalError::new(StatusCode::BAD_REQUEST, "choose an organisation"))?;
    state
        .store
        .switch_portal_org(form.session.hash.clone(), org_id.to_owned())
        .await?;
    Ok(see_other("/portal/overview"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hookgate_portal=abc"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, SIGNIN_COOKIE), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_https() {
        let plain = set_cookie("n", "v", 60, false);
        assert_eq!(
            plain,
            "n=v; Path=/portal; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        assert!(set_cookie("n", "v", 60, true)
            .to_str()
            .unwrap()
            .ends_with("; Secure"));

        let mut headers = HeaderMap::new();
        assert!(!over_https(&headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(over_https(&headers));
    }
}

//! The portal: server-rendered pages under `/portal` where an organisation
//! sees and acts on its endpoints, webhook events and callback messages.
//!
//! How it holds together:
//!
//! - **Sessions** ([`session`]): signing in with an API key secret (or the
//!   admin token) creates a server-side session in the store; the browser
//!   holds only a random id in an `HttpOnly`, `SameSite=Strict` cookie
//!   (`Secure` behind HTTPS). Every page handler takes a [`Session`], which
//!   sends a browser without one to the sign-in page.
//! - **Forms** are protected against cross-site request forgery twice: the
//!   cookie is `SameSite=Strict`, and every POST carries the session's
//!   token in a hidden field, checked by [`Form`] before any handler runs.
//! - **Escaping**: pages are `maud` templates, which escape every value
//!   they interpolate; event data is untrusted and only ever shown that way.
//! - **Headers** ([`security_headers`]): a Content-Security-Policy that
//!   allows no script at all and styles only from our own stylesheet, plus
//!   `X-Frame-Options: DENY` and `Referrer-Policy: same-origin`.
//!
//! One file per page group: [`overview`], [`endpoints`], [`events`],
//! [`callbacks`], [`catalogue`]; [`view`] holds the layout and the small
//! pieces they share.

mod callbacks;
mod catalogue;
mod endpoints;
mod events;
mod overview;
mod session;
mod view;

use axum::extract::{FromRequest, Request};
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::html;

use crate::api::{ApiError, AppState};
use crate::error::Error;

pub use session::Session;

/// The policy every portal answer carries: no script, no framing, styles
/// and images only from this server (inline SVG charts need neither).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The portal's stylesheet, compiled into the binary.
const STYLESHEET: &str = include_str!("../../assets/portal.css");

/// Every portal route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/portal",
            get(|| async { Redirect::to("/portal/overview") }),
        )
        .route(
            "/portal/",
            get(|| async { Redirect::to("/portal/overview") }),
        )
        .route("/portal/assets/portal.css", get(stylesheet))
        .merge(session::routes())
        .merge(overview::routes())
        .merge(endpoints::routes())
        .merge(events::routes())
        .merge(callbacks::routes())
        .merge(catalogue::routes())
        .layer(axum::middleware::map_response(security_headers))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Adds the portal's security headers to an answer; pages are also never
/// cached, since they show one organisation's data.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A failed portal request, shown as a small page that says what to do.
#[derive(Debug)]
pub struct PortalError {
    status: StatusCode,
    message: String,
}

impl PortalError {
    /// An error page with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 404 for `what`.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    /// 403: the form did not carry this session's token.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "this form has expired or did not come from this portal: reload the page and \
             submit it again",
        )
    }
}

impl From<ApiError> for PortalError {
    fn from(error: ApiError) -> Self {
        Self::new(error.status(), error.message())
    }
}

impl From<Error> for PortalError {
    fn from(error: Error) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), "portal: {}", self.message);
        }
        let title = self.status.canonical_reason().unwrap_or("Error");
        let page = view::bare(
            title,
            html! {
                h1 { (title) }
                p role="alert" { (self.message) }
                p { a href="/portal/overview" { "Back to the portal" } }
            },
        );
        (self.status, page).into_response()
    }
}

/// The result of a portal handler.
pub type PortalResult<T = Response> = Result<T, PortalError>;

/// The fields of a form or query string, in order. Repeated names (ticked
/// boxes) keep every value.
#[derive(Clone, Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses `application/x-www-form-urlencoded` text.
    pub fn parse(text: &str) -> Self {
        Self(
            url::form_urlencoded::parse(text.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `name`, trimmed, when present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// Re-encodes the fields, leaving out `skip`: links that keep filters.
    pub fn encode_without(&self, skip: &[&str]) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                self.0
                    .iter()
                    .filter(|(n, v)| !skip.contains(&n.as_str()) && !v.is_empty()),
            )
            .finish()
    }
}

/// The query string of a GET request as [`Fields`].
pub struct Query(pub Fields);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Query {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Query(Fields::parse(parts.uri.query().unwrap_or_default())))
    }
}

/// A POSTed form of a signed-in session whose `csrf` field matched the
/// session's token. Anything else is refused with 403 before the handler
/// runs.
pub struct Form {
    /// Who sent it.
    pub session: Session,
    /// Its fields.
    pub fields: Fields,
}

impl FromRequest<AppState> for Form {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = <Session as axum::extract::FromRequestParts<AppState>>::from_request_parts(
            &mut parts, state,
        )
        .await
        .map_err(|rejection| {
            // A POST without a session is refused outright, not redirected:
            // replaying it after signing in would act on a stale page.
            if rejection.status().is_redirection() {
                PortalError::forbidden().into_response()
            } else {
                rejection
            }
        })?;
        let limit = state.settings.max_body_bytes;
        let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
            PortalError::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response()
        })?;
        let fields = Fields::parse(&String::from_utf8_lossy(&body));
        let sent = fields.get("csrf").unwrap_or_default();
        if !session::same(sent.as_bytes(), session.csrf_token.as_bytes()) {
            tracing::warn!(org_id = %session.org_id, "portal: form refused, wrong csrf token");
            return Err(PortalError::forbidden().into_response());
        }
        Ok(Form { session, fields })
    }
}

/// Renders a signed-in page; an admin session also gets the organisations
/// to switch between.
pub async fn render(
    state: &AppState,
    session: &Session,
    nav: view::Nav,
    title: &str,
    body: maud::Markup,
) -> PortalResult {
    let orgs: Vec<(String, String)> = if session.admin {
        let orgs = state.store.list_orgs().await?;
        orgs.into_iter().map(|o| (o.org_id, o.name)).collect()
    } else {
        Vec::new()
    };
    Ok(view::page(session, nav, title, &orgs, body).into_response())
}

/// A redirect after a POST: the browser then GETs `to`.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// `back` if it is a portal path, else `fallback`: a form's return address
/// must never lead off the portal.
pub fn portal_path<'a>(back: Option<&'a str>, fallback: &'a str) -> &'a str {
    match back {
        Some(path)
            if path.starts_with("/portal/")
                && !path.contains("//")
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => fallback,
    }
}

/// Where a Retry button leads: back to the list it was pressed on, or to
/// the detail page (`detail`) with a note that the retry was asked for.
pub fn after_retry(detail: &str, back: Option<&str>) -> Response {
    let back = portal_path(back, detail);
    if back == detail {
        see_other(&format!("{detail}?done=retried"))
    } else {
        see_other(back)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_addresses_stay_on_the_portal_and_on_one_line() {
        assert_eq!(
            portal_path(Some("/portal/events?x=1"), "/f"),
            "/portal/events?x=1"
        );
        for bad in [
            "https://evil.test/",
            "/portal//evil.test",
            "/portal/x\r\nSet-Cookie: a=b",
        ] {
            assert_eq!(portal_path(Some(bad), "/f"), "/f", "{bad:?}");
        }
    }

    #[test]
    fn repeated_fields_keep_every_value() {
        let fields = Fields::parse("status=Success&status=Failed&q=+a%20b+&empty=");
        assert_eq!(fields.all("status"), vec!["Success", "Failed"]);
        assert_eq!(fields.get("q"), Some("a b"));
        assert_eq!(fields.get("empty"), None);
        assert_eq!(
            fields.encode_without(&["q"]),
            "status=Success&status=Failed"
        );
    }

    #[test]
    fn return_addresses_stay_on_the_portal() {
        assert_eq!(
            portal_path(Some("/portal/events?x=1"), "/f"),
            "/portal/events?x=1"
        );
        assert_eq!(portal_path(Some("https://evil.example/"), "/f"), "/f");
        assert_eq!(portal_path(Some("/portal//evil.example"), "/f"), "/f");
        assert_eq!(portal_path(None, "/f"), "/f");
    }
}

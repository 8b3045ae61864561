//! The operator's panel at `/ui/` on the admin listener: server-rendered HTML (maud), one
//! embedded stylesheet, no script and no external asset, so it works offline.
//!
//! `/ui/login` takes the admin token (form field `token`) and opens a session
//! ([`session`]); every other page answers 303 to the login page without a live session, and
//! every POST must carry the session's CSRF token, so a request without both changes nothing.
//! Changes to accounts go through [`crate::partners::edit`], the editor of `iofd partners`,
//! against the file's content hash the form was rendered with ([`actions`]).

mod actions;
mod overview;
mod pages;
pub mod session;

use std::path::PathBuf;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use maud::Markup;

use super::{body, Body, State};
use crate::config::Config;
use session::{same_secret, Sessions};

/// The session cookie (path `/ui`).
const SESSION_COOKIE: &str = "iofd_session";
/// The login form's own CSRF cookie: the form carries the same value (no session exists yet).
const LOGIN_COOKIE: &str = "iofd_login";
/// Largest form body accepted.
const FORM_LIMIT: usize = 64 * 1024;
const STYLE: &str = include_str!("style.css");
/// Nothing but this origin's stylesheet and forms; never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the panel needs beyond the listeners' state: its sessions, and the configuration the
/// partners editor validates with (the same as `iofd partners` reads).
pub struct Panel {
    pub sessions: Sessions,
    /// What the admin API applied last (shown on the overview).
    pub ingests: overview::IngestMarks,
    config: Config,
}

impl Panel {
    pub fn new(config: &Config) -> Panel {
        Panel {
            sessions: Sessions::new(config.clock.clone(), session::SESSION_TTL),
            ingests: overview::IngestMarks::default(),
            config: config.clone(),
        }
    }

    fn partners_path(&self) -> PathBuf {
        self.config.partners_path()
    }
}

/// A request's form fields (`application/x-www-form-urlencoded`).
pub struct Form(Vec<(String, String)>);

impl Form {
    fn parse(bytes: &[u8]) -> Form {
        Form(form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Answer a request under `/ui`.
pub async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, "/ui/style.css") => return style(),
        (&Method::GET | &Method::HEAD, "/ui/login") => return login_form(None),
        (&Method::POST, "/ui/login") => return login(state, req).await,
        _ => {}
    }
    let Some((session, csrf)) = session_of(state, req.headers()) else {
        // No session: nothing is read or changed, whatever was asked.
        return see_other("/ui/login", None);
    };
    match method {
        Method::GET | Method::HEAD => {
            let query = req.uri().query().unwrap_or("").to_string();
            pages::get(state, &csrf, &path, &query)
        }
        Method::POST => {
            let form = match read_form(req).await {
                Ok(form) => form,
                Err(response) => return response,
            };
            if !form
                .get("csrf")
                .is_some_and(|given| same_secret(&csrf, given))
            {
                return page(
                    StatusCode::FORBIDDEN,
                    pages::message(
                        Some(&csrf),
                        "Form expired",
                        "The form did not carry this session's security token; nothing was changed. Open the page again and repeat the change.",
                    ),
                );
            }
            if path == "/ui/logout" {
                state.panel.sessions.close(&session);
                return see_other("/ui/login", Some(&clear_cookie(SESSION_COOKIE, "/ui")));
            }
            actions::post(state, &csrf, &path, &form)
        }
        _ => page(
            StatusCode::METHOD_NOT_ALLOWED,
            pages::message(
                Some(&csrf),
                "Not allowed",
                "Pages are read with GET and changed with POST.",
            ),
        ),
    }
}

/// The live session named by the request's cookie, with its CSRF token.
fn session_of(state: &State, headers: &HeaderMap) -> Option<(String, String)> {
    let id = cookie(headers, SESSION_COOKIE)?;
    let csrf = state.panel.sessions.csrf_of(&id)?;
    Some((id, csrf))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn clear_cookie(name: &str, path: &str) -> String {
    format!("{name}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0")
}

async fn read_form(req: Request<Incoming>) -> Result<Form, Response<Body>> {
    match Limited::new(req.into_body(), FORM_LIMIT).collect().await {
        Ok(body) => Ok(Form::parse(&body.to_bytes())),
        Err(_) => Err(page(
            StatusCode::BAD_REQUEST,
            pages::message(
                None,
                "Bad form",
                "The form could not be read (too large or cut short); nothing was changed.",
            ),
        )),
    }
}

fn login_form(error: Option<&str>) -> Response<Body> {
    let csrf = crate::partners::edit::generate_token();
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let mut response = page(status, pages::login(&csrf, error));
    let cookie =
        format!("{LOGIN_COOKIE}={csrf}; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=600");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn login(state: &State, req: Request<Incoming>) -> Response<Body> {
    let cookie_csrf = cookie(req.headers(), LOGIN_COOKIE);
    let form = match read_form(req).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let csrf_ok = match (cookie_csrf, form.get("csrf")) {
        (Some(expected), Some(given)) => same_secret(&expected, given),
        _ => false,
    };
    if !csrf_ok {
        return login_form(Some("The login form expired; please try again."));
    }
    let token_ok = match (state.admin_token.as_deref(), form.get("token")) {
        (Some(expected), Some(given)) => same_secret(expected, given.trim()),
        _ => false,
    };
    if !token_ok {
        let why = if state.admin_token.is_none() {
            "No admin token is configured (admin_token): the panel is closed."
        } else {
            "Wrong admin token."
        };
        return login_form(Some(why));
    }
    let opened = state.panel.sessions.open();
    let session = format!(
        "{SESSION_COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}",
        opened.id,
        state.panel.sessions.ttl().as_secs()
    );
    let mut response = see_other("/ui/", Some(&session));
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(LOGIN_COOKIE, "/ui/login")) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

fn style() -> Response<Body> {
    let mut response = Response::new(body::full(STYLE));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// An HTML page with the panel's security headers: never cached, never framed, nothing
/// loaded from elsewhere.
fn page(status: StatusCode, markup: Markup) -> Response<Body> {
    let text = markup.into_string();
    let mut response = Response::new(body::full(text));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    security_headers(h);
    response
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// 303 to `location` (a path of the panel), optionally setting a cookie.
fn see_other(location: &str, set_cookie: Option<&str>) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    if let Some(v) = set_cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        h.append(header::SET_COOKIE, v);
    }
    security_headers(h);
    response
}

/// A partner id from a path segment (ids may be e-mail logins, `%40` for `@`).
fn decode_segment(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// What a path segment keeps as it is: partner ids' own characters (`@` is allowed in a
/// path); anything else is escaped.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'@');

/// A partner id in a path segment.
fn encode_segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_forms_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; iofd_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
        let form = Form::parse(b"csrf=x%2By&name=Sklep+Nowak&name=second");
        assert_eq!(form.get("csrf"), Some("x+y"));
        assert_eq!(form.get("name"), Some("Sklep Nowak"));
        assert_eq!(
            decode_segment("jan%40sklep.pl").as_deref(),
            Some("jan@sklep.pl")
        );
        assert_eq!(encode_segment("jan@sklep.pl"), "jan@sklep.pl");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}

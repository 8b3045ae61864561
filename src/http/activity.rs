//! `GET /v1/partners/activity` on the admin listener: every account's fetches (see
//! [`crate::activity`]), behind the admin token.

use hyper::{Method, Request, Response, StatusCode};

use super::ingest::{check_token, json};
use super::{Body, HttpError, State};
use crate::activity::PartnerReport;

#[derive(serde::Serialize)]
struct Answer {
    /// When the figures were taken (RFC 3339, UTC).
    now: String,
    /// A partner without a successful fetch for this long is `silent`.
    silent_after_secs: u64,
    partners: Vec<PartnerReport>,
}

/// The accounts in force, sorted by id, with their activity.
pub fn reports(state: &State) -> Vec<PartnerReport> {
    let partners = state.partners();
    let mut ids: Vec<&str> = partners.accounts().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    state.activity.report(ids)
}

pub fn handle<B>(state: &State, req: &Request<B>) -> Response<Body> {
    if let Err(e) = check_token(state.admin_token.as_deref(), req.headers()) {
        return e.response();
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return HttpError::WrongMethod { allow: "GET, HEAD" }.response();
    }
    let answer = Answer {
        now: crate::activity::rfc3339(state.clock.now().as_second()),
        silent_after_secs: state.activity.silent_after().as_secs(),
        partners: reports(state),
    };
    json(StatusCode::OK, &answer)
}

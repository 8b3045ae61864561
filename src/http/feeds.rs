//! Partner feed requests: route, partner check, artifact lookup, file response.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::body::Revocable;
use super::conn::ConnCut;
use super::routes::{self, FeedRequest, FileRef};
use super::{access, respond, signed, Body, HttpError};
use crate::artifacts::GatewayLinks;
use crate::catalog::Format;
use crate::http::State;
use crate::partners::{Access, FileType};

/// Answer one request on the public listener.
pub async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let started = std::time::Instant::now();
    if let Some(signed) = routes::parse_signed(req.uri().path(), req.uri().query()) {
        let result = if req.method() == Method::GET || req.method() == Method::HEAD {
            signed::answer(state, &req, &signed).await
        } else {
            Err(HttpError::MethodNotAllowed)
        };
        // A partner id under a signature that does not hold is a stranger's word: no label.
        let verified = !matches!(
            result,
            Err(HttpError::BadSignature
                | HttpError::SignatureExpired
                | HttpError::MethodNotAllowed)
        );
        let mut response = result.unwrap_or_else(|e| e.response());
        response.extensions_mut().insert(access::Entry {
            method: req.method().clone(),
            partner: verified.then_some(signed.partner),
            shop: 0,
            file: signed.file,
            started,
        });
        return response;
    }
    let route = routes::parse(req.uri().path(), req.uri().query());
    let result = answer(state, &req, route.as_ref()).await;
    let mut response = result.unwrap_or_else(|e| e.response());
    // The access log line is written by `access::track` when the body ends, with the bytes
    // sent; it names the path without the token: logs must not leak credentials. The
    // route's strings move into it: they are not needed any more.
    let (partner, shop, file) = match route {
        Some(r) => (Some(r.partner), r.shop, file_label(r.file)),
        None => (None, 0, "-".into()),
    };
    response.extensions_mut().insert(access::Entry {
        method: req.method().clone(),
        partner,
        shop,
        file,
        started,
    });
    response
}

fn file_label(file: FileRef) -> String {
    match file {
        FileRef::Named(n) => n,
        FileRef::Kind { kind, .. } => kind,
    }
}

async fn answer(
    state: &State,
    req: &Request<Incoming>,
    feed: Option<&FeedRequest>,
) -> Result<Response<Body>, HttpError> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(HttpError::MethodNotAllowed);
    }
    let feed = feed.ok_or(HttpError::NotFound)?;
    let partners = state.partners();
    let account = match partners.authenticate(&feed.partner, &feed.token) {
        Access::Granted(account) => {
            state
                .rate_limiter
                .check(&account.id)
                .map_err(HttpError::RateLimited)?;
            account
        }
        Access::NotFound => return Err(HttpError::NotFound),
        Access::Revoked => return Err(HttpError::Revoked),
        Access::SharingOff => return Err(HttpError::SharingOff),
    };
    if !account.shops.contains(&feed.shop) {
        return Err(HttpError::NotFound);
    }
    // A language the partner does not have is a file it does not have.
    let (profile, key) = account
        .profile_in(feed.shop, feed.language.as_deref())
        .ok_or(HttpError::NotFound)?;
    let name = file_name(feed, profile.format, account.file_type);
    let set = state.artifacts.current();
    let Some(files) = set.profile_by_key(key) else {
        // A `language=` profile is rendered once a partner asks for it.
        if feed.language.is_some() {
            state.demand.ask_for_profile(key, profile);
        }
        return Err(HttpError::NotReady);
    };
    if state.redirect_to_profile && name != "gateway.xml" {
        return signed::redirect(state, &feed.partner, files, &name, set.generation);
    }
    let artifact = if name == "gateway.xml" {
        let snapshot = set.snapshot.as_ref().ok_or(HttpError::NotReady)?;
        let links = GatewayLinks {
            public_url: &state.public_url,
            partner: &feed.partner,
            token: &feed.token,
            shop: feed.shop,
            language: feed.language.as_deref(),
        };
        state
            .artifacts
            .gateways
            .get(&links, &state.signer, files, snapshot, &state.timezone)
            .ok_or(HttpError::NotFound)?
    } else {
        files.get(&name).cloned().ok_or(HttpError::NotFound)?
    };
    // After the lookup: a name that is not a file gets no cache entry.
    let keys = state.purge_keys.get(
        respond::KeyScope::Partner {
            partner: &feed.partner,
            shop: feed.shop,
        },
        crate::purge::kind_of(&name),
        key,
    )?;
    // The connection's cut comes from `serve`; a request without one (tests calling the
    // handler directly) streams without a watch on the grant.
    let revocable = req.extensions().get::<Arc<ConnCut>>().map(|cut| Revocable {
        grant: account.grant().clone(),
        cut: cut.clone(),
    });
    respond::file(req.method(), req.headers(), &artifact, keys, revocable).await
}

/// The file name a request resolves to for this partner.
fn file_name(feed: &FeedRequest, format: Format, file_type: FileType) -> String {
    match &feed.file {
        FileRef::Named(name) => name.clone(),
        FileRef::Kind { kind, csv } => {
            if *csv || (format == Format::Csv && kind != "gateway") {
                format!("{kind}.csv")
            } else if file_type == FileType::Gzip && kind != "gateway" {
                format!("{kind}.xml.gz")
            } else {
                format!("{kind}.xml")
            }
        }
    }
}

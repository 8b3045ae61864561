//! Profile-addressed file requests (`/p/{key}/{file}?partner=…&expires=…&g=…&sig=…`) and the 302
//! that `redirect_to_profile` answers stable partner URLs with.
//!
//! The signature proves that iofd listed the URL for the partner; the partner's state is
//! still read on every request, so a revoked partner is refused at once by the origin (a
//! cache in front refuses it once the signature expires, see `docs/cdn.md`).

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::body::Revocable;
use super::conn::ConnCut;
use super::routes::SignedRequest;
use super::{body, respond, Body, HttpError, State};
use crate::artifacts::signed_url;
use crate::artifacts::ProfileArtifacts;
use crate::signing::Verdict;

/// How long a request for a generation newer than the one served waits for it: a replica
/// follows the writer within about a second (`docs/scale-out.md`).
pub const BEHIND_WAIT: Duration = Duration::from_secs(2);

/// The `Surrogate-Key` of a profile-addressed file: its path's key, and that key with the
/// file kind, so one purge clears the one shared copy (both representations).
pub fn surrogate_key(key: &str, kind: &str) -> String {
    format!("p:{key} p:{key}/{kind} file:{kind}")
}

/// Answer a GET or HEAD of a profile-addressed file.
pub async fn answer(
    state: &State,
    req: &Request<Incoming>,
    signed: &SignedRequest,
) -> Result<Response<Body>, HttpError> {
    match state
        .signer
        .verify(&signed.partner, &signed.path, signed.expires, &signed.sig)
    {
        Verdict::Valid => {}
        Verdict::Expired => return Err(HttpError::SignatureExpired),
        Verdict::Bad => return Err(HttpError::BadSignature),
    }
    let partners = state.partners();
    if !partners.sharing_enabled {
        return Err(HttpError::SharingOff);
    }
    // Signed for a partner since removed: its access ended like a revocation.
    let account = partners
        .get(&signed.partner)
        .filter(|a| a.offer_access)
        .ok_or(HttpError::Revoked)?;
    state
        .rate_limiter
        .check(&account.id)
        .map_err(HttpError::RateLimited)?;
    if let Some(wanted) = signed.generation {
        catch_up(state, wanted).await?;
    }
    // The partner's profile whose file has this path (a shop and a language of its own).
    let find = || {
        let set = state.artifacts.current();
        account
            .profiles_with_file_key(&signed.file, &signed.key)
            .find_map(|key| set.profile_by_key(key)?.get(&signed.file).cloned())
    };
    let artifact = match find() {
        Some(a) => a,
        // A window cut on the writer makes no new generation: a replica a manifest behind
        // lacks the change file another node's gateway lists under the same `g`.
        None if signed.generation.is_some() && state.is_replica() => {
            served_within(state, |_| find())
                .await
                .ok_or(HttpError::NotFound)?
        }
        None => return Err(HttpError::NotFound),
    };
    let revocable = req.extensions().get::<Arc<ConnCut>>().map(|cut| Revocable {
        grant: account.grant().clone(),
        cut: cut.clone(),
    });
    let kind = crate::purge::kind_of(&signed.file);
    respond::file(
        req.method(),
        req.headers(),
        &artifact,
        state
            .purge_keys
            .get(respond::KeyScope::Path, kind, &signed.key)?,
        revocable,
    )
    .await
}

/// Wait (at most [`BEHIND_WAIT`]) until the set served is of generation `wanted` or newer:
/// a gateway rendered by a replica ahead of this one lists bytes this one does not serve
/// yet. An older generation is answered at once with the current files, as after an update.
async fn catch_up(state: &State, wanted: u64) -> Result<(), HttpError> {
    match served_within(state, |g| (g >= wanted).then_some(())).await {
        Some(()) => Ok(()),
        None => Err(HttpError::Behind {
            wanted,
            serving: *state.artifacts.served().borrow(),
        }),
    }
}

/// The first `Some` of `found` (given the generation served), tried now and at every swap
/// of the served set for at most [`BEHIND_WAIT`]; `None` when it never came.
async fn served_within<T>(state: &State, mut found: impl FnMut(u64) -> Option<T>) -> Option<T> {
    let mut served = state.artifacts.served();
    tokio::time::timeout(BEHIND_WAIT, async {
        loop {
            let generation = *served.borrow_and_update();
            if let Some(t) = found(generation) {
                return Some(t);
            }
            served.changed().await.ok()?;
        }
    })
    .await
    .ok()
    .flatten()
}

/// The 302 from a stable partner URL to the signed profile URL of `name`; 404 when the
/// profile has no such file. Never cached: the target changes with each expiry bucket and a
/// revocation must take effect at once.
pub fn redirect(
    state: &State,
    partner: &str,
    files: &ProfileArtifacts,
    name: &str,
    generation: u64,
) -> Result<Response<Body>, HttpError> {
    if files.get(name).is_none() {
        return Err(HttpError::NotFound);
    }
    let url = signed_url(
        &state.public_url,
        &state.signer,
        partner,
        &files.profile,
        name,
        state.signer.expires_now(),
        generation,
    );
    let location =
        HeaderValue::from_str(&url).map_err(|e| HttpError::internal("a redirect URL", e))?;
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_LENGTH, 0)
        .body(body::empty())
        .map_err(|e| HttpError::internal("building a response", e))
}

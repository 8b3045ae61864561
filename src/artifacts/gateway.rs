//! Gateways: the one file that differs per partner. Its links are signed profile URLs
//! (`/p/{key}/{file}?partner=…&expires=…&g=…&sig=…`, see [`crate::signing`]): the path is shared by
//! every partner whose settings give the file the same bytes, the query carries this
//! partner's authority. Small, rendered on first request after each publish (and each expiry
//! bucket) and kept until the next one.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use md5::{Digest, Md5};

use super::{Artifact, ProfileArtifacts};
use crate::catalog::RenderProfile;
use crate::catalog::{ArchivedShop, Shop};
use crate::render::{self, Gateway, GatewayFile};
use crate::signing::Signer;
use crate::snapshot::Snapshot;

/// Whose gateway it is, and its stable partner URLs (the entry URLs `serve` prints).
#[derive(Debug, Clone, Copy)]
pub struct GatewayLinks<'a> {
    /// Base URL without a trailing slash.
    pub public_url: &'a str,
    pub partner: &'a str,
    pub token: &'a str,
    pub shop: u32,
    /// The `language=` the gateway was asked in: part of the cache key (the files listed
    /// are that language's profile's) and carried on in stable URLs.
    pub language: Option<&'a str>,
}

impl GatewayLinks<'_> {
    /// The stable partner URL of one of the partner's files (`/feeds/…`).
    pub fn url(&self, name: &str) -> String {
        let mut url = format!(
            "{}/feeds/{}/{}/{}/{}",
            self.public_url, self.partner, self.token, self.shop, name
        );
        if let Some(language) = self.language {
            url.push_str("?language=");
            url.push_str(language);
        }
        url
    }
}

/// The key naming the bytes of file `name` of `profile`: the key of the settings that file
/// shows (full files and change files: [`RenderProfile::full_key`]; light files:
/// [`RenderProfile::light_key`]; reference files: [`RenderProfile::reference_key`]). Partners
/// whose profiles differ elsewhere (a discount for full.xml) share the path.
pub fn path_key(profile: &RenderProfile, name: &str) -> String {
    profile.key_of_file(name)
}

/// The path of a profile-addressed file: `/p/{key}/{name}`.
pub fn profile_path(profile: &RenderProfile, name: &str) -> String {
    format!("/p/{}/{name}", path_key(profile, name))
}

/// The signed URL of file `name` of `profile` for `partner`, expiring at `expires`, made
/// from the files of store generation `generation`.
pub fn signed_url(
    public_url: &str,
    signer: &Signer,
    partner: &str,
    profile: &RenderProfile,
    name: &str,
    expires: i64,
    generation: u64,
) -> String {
    let path = profile_path(profile, name);
    let query = signer.query(partner, &path, expires, generation);
    format!("{public_url}{path}?{query}")
}

/// What else names a rendered gateway of one partner: (token, shop, language, generation,
/// file set, expiry).
type GatewayKey = (String, u32, Option<String>, u64, usize, i64);

/// Rendered gateways by partner, then by the rest of their key: a request finds its gateway by
/// borrowed strings, allocating nothing (one partner has a handful of entries).
type GatewayMap = HashMap<String, Vec<(GatewayKey, Arc<Artifact>)>>;

/// Rendered gateways of the current artifact set.
#[derive(Default)]
pub struct GatewayCache {
    map: Mutex<GatewayMap>,
    /// The configured shop (archived once), for a shop the catalog has no metadata for.
    fallback: Option<(u32, rkyv::util::AlignedVec)>,
}

impl GatewayCache {
    /// A cache whose gateways use `shop` for its id while the catalog has no metadata for it.
    pub fn with_fallback(shop: Option<&Shop>) -> Result<GatewayCache, rkyv::rancor::Error> {
        let fallback = match shop {
            Some(shop) => Some((shop.id, rkyv::to_bytes::<rkyv::rancor::Error>(shop)?)),
            None => None,
        };
        Ok(GatewayCache {
            map: Mutex::default(),
            fallback,
        })
    }

    /// The id of the configured fallback shop, if any.
    pub fn fallback_shop(&self) -> Option<u32> {
        self.fallback.as_ref().map(|(id, _)| *id)
    }

    /// Whether a gateway can be rendered for `shop`: the catalog or the configuration has
    /// its metadata.
    pub fn has_shop(&self, snapshot: &Snapshot, shop: u32) -> bool {
        self.fallback_shop() == Some(shop) || catalog_shop(snapshot, shop).is_some()
    }

    /// Forget every gateway (after a publish or a partners reload).
    pub fn clear(&self) {
        self.map.lock().clear();
    }

    /// The partner's gateway for `files`, rendering it on first use. `None` when neither the
    /// catalog nor the configuration has metadata for the shop.
    pub fn get(
        &self,
        links: &GatewayLinks,
        signer: &Signer,
        files: &ProfileArtifacts,
        snapshot: &Snapshot,
        timezone: &jiff::tz::TimeZone,
    ) -> Option<Arc<Artifact>> {
        let expires = signer.expires_now();
        // The token is part of the key: a gateway embeds it in every link, so one rendered
        // for a token that a reload just rotated must never be served under the new one.
        // So is the identity of the file set it lists: light-only and full publishes can share
        // a generation, and a gateway rendered from the older set (inserted after the newer
        // publish cleared the cache) must not be found for the newer one. The caller holds
        // `files`, so its address cannot be reused while this entry is written.
        let matches = |k: &GatewayKey| {
            k.0 == links.token
                && k.1 == links.shop
                && k.2.as_deref() == links.language
                && k.3 == snapshot.generation()
                && k.4 == files as *const ProfileArtifacts as usize
                // Links signed in another expiry bucket carry another `expires`.
                && k.5 == expires
        };
        if let Some(entries) = self.map.lock().get(links.partner) {
            if let Some((_, found)) = entries.iter().find(|(k, _)| matches(k)) {
                return Some(found.clone());
            }
        }
        let fallback = self
            .fallback
            .as_ref()
            .filter(|(id, _)| *id == links.shop)
            .and_then(|(_, bytes)| rkyv::access::<ArchivedShop, rkyv::rancor::Error>(bytes).ok());
        let shop = catalog_shop(snapshot, links.shop).or(fallback)?;
        let signed = |name: &str| {
            signed_url(
                links.public_url,
                signer,
                links.partner,
                &files.profile,
                name,
                expires,
                snapshot.generation(),
            )
        };
        let rendered = Arc::new(render_gateway(&signed, files, snapshot, shop, timezone)?);
        let mut map = self.map.lock();
        // Bound the cache: one entry per partner and shop in steady state.
        if map.len() > 100_000 {
            map.clear();
        }
        let entries = map.entry(links.partner.to_string()).or_default();
        // Entries of older generations, file sets or buckets are never asked for again.
        entries.retain(|(k, _)| k.3 == snapshot.generation() && k.5 == expires);
        let key = (
            links.token.to_string(),
            links.shop,
            links.language.map(str::to_owned),
            snapshot.generation(),
            files as *const ProfileArtifacts as usize,
            expires,
        );
        entries.push((key, rendered.clone()));
        Some(rendered)
    }
}

/// The catalog's metadata of `shop`. Only the shop is needed: no whole-dictionary index on a
/// request.
fn catalog_shop(snapshot: &Snapshot, shop: u32) -> Option<&ArchivedShop> {
    snapshot
        .dicts()
        .shops
        .iter()
        .find(|s| s.id.to_native() == shop)
}

fn render_gateway(
    url: &dyn Fn(&str) -> String,
    files: &ProfileArtifacts,
    snapshot: &Snapshot,
    shop: &ArchivedShop,
    timezone: &jiff::tz::TimeZone,
) -> Option<Artifact> {
    let suffix = if files.profile.gzip { ".gz" } else { "" };
    let entry = |kind: &str| -> Option<GatewayFile> {
        let a = files.get(&format!("{kind}.xml{suffix}"))?;
        Some(GatewayFile {
            url: url(&a.name),
            // light.xml may be listed without a hash (see `light::MD5_LIMIT`).
            md5: (!a.md5.is_empty()).then(|| a.md5.clone()),
            changed: Some(a.changed),
        })
    };
    let published = snapshot.published();
    let generated = published.to_zoned(timezone.clone()).datetime();
    let expires = generated
        .checked_add(jiff::Span::new().days(7))
        .unwrap_or(generated);
    let others = [
        "producers",
        "units",
        "parameters",
        "stocks",
        "series",
        "warranties",
    ]
    .into_iter()
    .filter_map(|kind| entry(kind).map(|f| (kind, f)))
    .collect();
    // Change files of this representation (plain or gzip), newest first.
    let mut changes: Vec<&Arc<Artifact>> = files
        .files
        .values()
        .filter(|a| a.kind == "full_change" && a.name.ends_with(&format!(".xml{suffix}")))
        .collect();
    changes.sort_by(|a, b| b.changed.cmp(&a.changed).then_with(|| b.name.cmp(&a.name)));
    let changes = changes
        .into_iter()
        .map(|a| GatewayFile {
            url: url(&a.name),
            md5: Some(a.md5.clone()),
            changed: Some(a.changed),
        })
        .collect();
    let gateway = Gateway {
        shop,
        generated,
        expires,
        full: entry("full")?,
        changes,
        light: entry("light")?,
        categories: entry("categories")?,
        sizes: entry("sizes")?,
        others,
    };
    let mut bytes = Vec::with_capacity(8 * 1024);
    render::write_gateway(&mut bytes, &gateway).ok()?;
    let md5 = hex::encode(Md5::digest(&bytes));
    let etag = format!("\"{}\"", &blake3::hash(&bytes).to_hex()[..32]);
    let gz = super::file::gzip_bytes(&bytes).ok()?;
    let plain = Artifact {
        name: "gateway.xml".into(),
        kind: "gateway".into(),
        path: PathBuf::new(),
        len: bytes.len() as u64,
        md5,
        etag,
        modified: SystemTime::from(published),
        changed: generated,
        content_type: "application/xml; charset=utf-8",
        content_encoding: None,
        memory: Some(Bytes::from(bytes)),
        mapped: None,
        pieces: None,
        gzip: None,
    };
    let encoded = Artifact {
        len: gz.len() as u64,
        md5: hex::encode(Md5::digest(&gz)),
        etag: format!("\"{}\"", &blake3::hash(&gz).to_hex()[..32]),
        content_encoding: Some("gzip"),
        memory: Some(Bytes::from(gz)),
        mapped: None,
        ..plain.clone()
    };
    Some(Artifact {
        gzip: Some(Arc::new(encoded)),
        ..plain
    })
}

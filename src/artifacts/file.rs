//! One rendered file on disk: written atomically, described by a small sidecar of metadata
//! so a restart can serve it without rendering or hashing it again.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use md5::{Digest, Md5};

use super::sink;
use crate::fsio;

use super::deflate::GZIP_LEVEL;

/// A rendered file, ready to serve.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The name in URLs: `full.xml`, `light.xml.gz`, `full.csv`.
    pub name: String,
    /// The gateway node it is listed under: `full`, `light`, `categories`, ...
    pub kind: String,
    pub path: PathBuf,
    pub len: u64,
    /// MD5 hex of the bytes served (the gateway's `hash`).
    pub md5: String,
    /// Strong entity tag, quoted.
    pub etag: String,
    pub modified: SystemTime,
    /// The `changed` time written into the gateway.
    pub changed: jiff::civil::DateTime,
    pub content_type: &'static str,
    /// `Some("gzip")` for a precompressed variant.
    pub content_encoding: Option<&'static str>,
    /// Small files are kept in memory.
    pub memory: Option<Bytes>,
    /// Larger files are mapped once and served from the mapping without copying; `None`
    /// when mapping failed (they then stream from disk).
    pub mapped: Option<Bytes>,
    /// A file served as the concatenation of pieces (light.xml); `path` is then empty.
    pub pieces: Option<std::sync::Arc<[super::Piece]>>,
    /// The same content gzip-compressed, served with `Content-Encoding: gzip` to clients
    /// that prefer it; its own bytes, length and ETag.
    pub gzip: Option<Arc<Artifact>>,
}

impl Artifact {
    /// This `.gz` file as the `Content-Encoding: gzip` representation of `plain`: the same
    /// bytes (shared, not copied), named and typed as `plain`.
    pub fn encoding_of(&self, plain: &Artifact) -> Artifact {
        Artifact {
            name: plain.name.clone(),
            kind: plain.kind.clone(),
            content_type: plain.content_type,
            content_encoding: Some("gzip"),
            gzip: None,
            ..self.clone()
        }
    }

    /// `plain` with `gz` attached as its gzip representation.
    pub fn with_gzip(&self, gz: &Artifact) -> Artifact {
        Artifact {
            gzip: Some(Arc::new(gz.encoding_of(self))),
            ..self.clone()
        }
    }
}

/// `bytes` gzip-compressed in memory (gateways: a few kilobytes).
pub(crate) fn gzip_bytes(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        flate2::Compression::new(GZIP_LEVEL),
    );
    enc.write_all(bytes)?;
    enc.finish()
}

/// A file that could not be rendered, written or read back.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A partner's narrowed reference files could not be prepared.
    #[error("reference files: {0}")]
    Render(#[source] crate::render::RenderError),
}

impl ArtifactError {
    /// Whether the work was stopped on purpose (see `Artifacts::stop_compressing`).
    pub fn interrupted(&self) -> bool {
        matches!(self, ArtifactError::Io { source, .. } if source.kind() == std::io::ErrorKind::Interrupted)
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ArtifactError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What the sidecar `<file>.meta` holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    len: u64,
    md5: String,
    blake3: String,
    modified_unix: u64,
    changed: String,
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".gz") {
        "application/gzip"
    } else if name.ends_with(".csv") {
        "text/csv; charset=utf-8"
    } else {
        "application/xml; charset=utf-8"
    }
}

/// The data file a path belongs to (a sidecar belongs to its data file).
pub(crate) fn data_path_of(path: &Path) -> PathBuf {
    match path.to_str().and_then(|s| s.strip_suffix(".meta")) {
        Some(stem) => PathBuf::from(stem),
        None => path.to_path_buf(),
    }
}

pub(crate) use super::sink::Sink;

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn sync_dir(dir: &Path) -> Result<(), ArtifactError> {
    fsio::sync_dir(dir).map_err(|e| ArtifactError::io(dir, e))
}

fn write_meta(path: &Path, meta: &Meta) -> Result<(), ArtifactError> {
    let meta_path = PathBuf::from(format!("{}.meta", path.display()));
    let text = serde_json::to_vec(meta)
        .map_err(|e| ArtifactError::io(&meta_path, std::io::Error::other(e)))?;
    fsio::Disk::PLAIN
        .write(&meta_path, &[&text])
        .map(drop)
        .map_err(|e| ArtifactError::io(&meta_path, e))
}

/// An artifact from a data file and its sidecar, if both are present and agree.
pub(crate) fn load(path: &Path, name: &str, kind: &str) -> Option<Artifact> {
    let meta_path = PathBuf::from(format!("{}.meta", path.display()));
    let meta: Meta = serde_json::from_slice(&std::fs::read(meta_path).ok()?).ok()?;
    let len = std::fs::metadata(path).ok()?.len();
    if len != meta.len {
        return None;
    }
    let changed: jiff::civil::DateTime = meta.changed.parse().ok()?;
    artifact(
        path,
        name,
        kind,
        len,
        meta.md5,
        &meta.blake3,
        SystemTime::UNIX_EPOCH + Duration::from_secs(meta.modified_unix),
        changed,
    )
    .ok()
}

/// What [`verify`] found under an artifacts directory.
#[derive(Debug, Default)]
pub struct ArtifactsCheck {
    /// Rendered files whose length and MD5 match their sidecar.
    pub files: usize,
    pub bytes: u64,
    /// Mismatches and unreadable files, each naming its file.
    pub problems: Vec<String>,
}

/// Check every rendered file that has a sidecar against the length and MD5 it records (the
/// gateway's `hash`), and every light.xml fragment against the blake3 its name carries,
/// reading each file once. Read-only.
pub fn verify(dir: &Path) -> ArtifactsCheck {
    let mut out = ArtifactsCheck::default();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.problems.push(format!("{}: {e}", d.display()));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "meta") {
                match check_one(&data_path_of(&path), &path) {
                    Ok(len) => {
                        out.files += 1;
                        out.bytes += len;
                    }
                    Err(problem) => out.problems.push(problem),
                }
            } else if let Some(named) = super::light::fragment_blake3(&path) {
                // A light.xml fragment: a restart takes its hashes from its name.
                match std::fs::read(&path) {
                    Ok(bytes) if *blake3::hash(&bytes).as_bytes() == named => {
                        out.files += 1;
                        out.bytes += bytes.len() as u64;
                    }
                    Ok(_) => out.problems.push(format!(
                        "{}: its bytes do not have the blake3 its name carries",
                        path.display()
                    )),
                    Err(e) => out.problems.push(format!("{}: {e}", path.display())),
                }
            }
        }
    }
    out.problems.sort();
    out
}

fn check_one(data: &Path, meta_path: &Path) -> Result<u64, String> {
    let meta: Meta = std::fs::read(meta_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| format!("{}: {e}", meta_path.display()))?;
    let mut file = File::open(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut len = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", data.display()))?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        len += n as u64;
    }
    let md5 = hex::encode(md5.finalize());
    if len != meta.len || md5 != meta.md5 {
        return Err(format!(
            "{}: {len} bytes with MD5 {md5}, but its sidecar records {} bytes with MD5 {}",
            data.display(),
            meta.len,
            meta.md5
        ));
    }
    Ok(len)
}

#[allow(clippy::too_many_arguments)]
fn artifact(
    path: &Path,
    name: &str,
    kind: &str,
    len: u64,
    md5: String,
    blake3_hex: &str,
    modified: SystemTime,
    changed: jiff::civil::DateTime,
) -> Result<Artifact, ArtifactError> {
    let memory = if super::keep_in_memory(len) {
        let mut buf = Vec::with_capacity(len as usize);
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| ArtifactError::io(path, e))?;
        Some(Bytes::from(buf))
    } else {
        None
    };
    let mapped = if memory.is_none() {
        crate::snapshot::map_file(path)
            .inspect_err(|e| {
                tracing::warn!(path = %path.display(), error = %e, "cannot map an artifact; it streams from disk")
            })
            .ok()
    } else {
        None
    };
    Ok(Artifact {
        name: name.to_string(),
        kind: kind.to_string(),
        path: path.to_path_buf(),
        len,
        md5,
        etag: format!("\"{}\"", &blake3_hex[..32.min(blake3_hex.len())]),
        modified,
        changed,
        content_type: content_type(name),
        // A `.xml.gz` file is served as a gzip file, not as a compressed XML representation.
        content_encoding: None,
        memory,
        mapped,
        pieces: None,
        gzip: None,
    })
}

/// Where [`build`] keeps the file `name` rendered from the input `stem`.
pub(crate) fn path_of(dir: &Path, stem: &str, name: &str) -> PathBuf {
    dir.join(format!("{stem}-{name}"))
}

/// Render a file (or reuse the one an earlier run rendered from the same input).
///
/// `stem` names the input the bytes depend on (`g12` for generation 12, `d…` for a
/// dictionaries content id), so equal inputs find the same file.
pub(crate) fn build(
    dir: &Path,
    name: &str,
    kind: &str,
    stem: &str,
    changed: jiff::civil::DateTime,
    modified: SystemTime,
    render: impl FnOnce(&mut Sink) -> std::io::Result<()>,
) -> Result<Artifact, ArtifactError> {
    let path = path_of(dir, stem, name);
    if let Some(found) = load(&path, name, kind) {
        return Ok(found);
    }
    let file = fsio::create(&path).map_err(|e| ArtifactError::io(&path, e))?;
    let mut sink = Sink::new(file);
    // On an error the temporary file is dropped, and with it removed.
    if let Err(e) = render(&mut sink) {
        return Err(ArtifactError::io(&path, e));
    }
    let sink::Written {
        file,
        md5,
        blake3,
        len,
    } = sink.finish().map_err(|e| ArtifactError::io(&path, e))?;
    file.commit().map_err(|e| ArtifactError::io(&path, e))?;
    let md5 = hex::encode(md5);
    let b3 = blake3.to_hex().to_string();
    write_meta(
        &path,
        &Meta {
            len,
            md5: md5.clone(),
            blake3: b3.clone(),
            modified_unix: unix(modified),
            changed: changed.to_string(),
        },
    )?;
    sync_dir(dir)?;
    artifact(&path, name, kind, len, md5, &b3, modified, changed)
}

/// The gzip variant of an artifact, compressed once and stored beside it, as the `.gz` file
/// partners with the `xml.gz` file type fetch; [`Artifact::with_gzip`] makes it the
/// `Content-Encoding: gzip` representation of the plain file too.
pub(crate) fn gzip(
    plain: &Artifact,
    stopping: &(dyn Fn() -> bool + Sync),
) -> Result<Artifact, ArtifactError> {
    let dir = plain.path.parent().unwrap_or(Path::new("."));
    let stem = plain
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(&format!("-{}", plain.name)))
        .unwrap_or("x")
        .to_string();
    let name = format!("{}.gz", plain.name);
    build(
        dir,
        &name,
        &plain.kind,
        &stem,
        plain.changed,
        plain.modified,
        |w: &mut Sink| super::deflate::gzip_file(&plain.path, w, stopping),
    )
}

/// [`gzip`] for each of `plain`, on the shared pool's cores (largest first, so one big full.xml does not
/// start last); results in the order of `plain`.
pub(crate) fn gzip_all(
    plain: &[Arc<Artifact>],
    stopping: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<Artifact>, ArtifactError> {
    use rayon::prelude::*;
    let mut order: Vec<usize> = (0..plain.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(plain[i].len));
    let mut done: Vec<(usize, Result<Artifact, ArtifactError>)> = order
        .par_iter()
        .with_max_len(1)
        .map(|&i| (i, gzip(&plain[i], stopping)))
        .collect();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn when() -> jiff::civil::DateTime {
        jiff::civil::date(2026, 11, 22).at(10, 30, 0, 0)
    }

    #[test]
    fn verify_finds_a_file_whose_bytes_disagree_with_its_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let profile = dir.path().join("p1");
        std::fs::create_dir(&profile).unwrap();
        let a = build(&profile, "full.xml", "full", "g1", when(), t, |w| {
            w.write_all(b"<offer/>")
        })
        .unwrap();
        build(&profile, "light.xml", "light", "g1", when(), t, |w| {
            w.write_all(b"<offer light/>")
        })
        .unwrap();
        let check = verify(dir.path());
        assert_eq!((check.files, check.bytes), (2, 8 + 14));
        assert!(check.problems.is_empty(), "{:?}", check.problems);

        // Same length, other bytes: only the MD5 tells.
        std::fs::write(&a.path, b"<offer!>").unwrap();
        let check = verify(dir.path());
        assert_eq!(check.files, 1);
        assert_eq!(check.problems.len(), 1);
        let problem = &check.problems[0];
        assert!(
            problem.contains("full.xml") && problem.contains(&a.md5),
            "{problem}"
        );
        assert!(verify(&dir.path().join("absent")).problems.is_empty());
    }

    #[test]
    fn builds_hashes_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let a = build(dir.path(), "full.xml", "full", "g1", when(), t, |w| {
            w.write_all(b"<offer/>")
        })
        .unwrap();
        assert_eq!(a.len, 8);
        assert_eq!(a.md5, hex::encode(Md5::digest(b"<offer/>")));
        assert_eq!(a.memory.as_deref(), Some(&b"<offer/>"[..]));
        assert!(a.etag.starts_with('"') && a.etag.ends_with('"'));
        // Same input: found on disk, the renderer is not called.
        let b = build(dir.path(), "full.xml", "full", "g1", when(), t, |_| {
            panic!("rendered twice")
        })
        .unwrap();
        assert_eq!(
            (b.md5.as_str(), b.etag.as_str(), b.modified, b.changed),
            (a.md5.as_str(), a.etag.as_str(), a.modified, a.changed)
        );
        // A sidecar that disagrees with the file makes it render again.
        std::fs::write(&a.path, b"<offer></offer>").unwrap();
        let c = build(dir.path(), "full.xml", "full", "g1", when(), t, |w| {
            w.write_all(b"<offer/>")
        })
        .unwrap();
        assert_eq!(c.len, 8);
        let gz = gzip(&c, &|| false).unwrap();
        assert_eq!(gz.name, "full.xml.gz");
        assert_eq!(gz.content_type, "application/gzip");
        let mut out = String::new();
        flate2::read::GzDecoder::new(File::open(&gz.path).unwrap())
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "<offer/>");
        assert_ne!(gz.etag, c.etag, "each representation has its own ETag");
        // As the gzip representation of the plain file: plain's name and type, gzip's bytes.
        let both = c.with_gzip(&gz);
        let enc = both.gzip.as_deref().unwrap();
        assert_eq!(
            (enc.name.as_str(), enc.content_type, enc.content_encoding),
            ("full.xml", c.content_type, Some("gzip"))
        );
        assert_eq!(
            (enc.etag.as_str(), enc.len, &enc.path),
            (gz.etag.as_str(), gz.len, &gz.path)
        );
        assert!(enc.gzip.is_none() && gz.gzip.is_none());
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gzip_bytes(b"<offer/>").unwrap()[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "<offer/>");
    }

    #[test]
    fn a_failed_render_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let err = build(
            dir.path(),
            "full.xml",
            "full",
            "g1",
            when(),
            SystemTime::now(),
            |w| {
                w.write_all(b"<offer>")?;
                Err(std::io::Error::other("boom"))
            },
        );
        assert!(err.is_err());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no file, no temp file"
        );
    }
}

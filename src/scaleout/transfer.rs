//! One file to or from the object store without holding it in memory (full.xml is gigabytes
//! at a million products). A file of at most one part goes up in one create-only put; a
//! larger one in a multipart upload, a few parts in flight, hashed as it is read. A download
//! streams into a temporary file beside its destination, hashed as it comes, and is renamed
//! into place (through `fsio`) only when its size and blake3 are the manifest's.

use std::io::Write;
use std::path::Path;

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::manifest::FileEntry;
use super::ScaleError;

/// The size of one part of a multipart upload, and the largest file put in one request
/// (S3 takes parts of 5 MiB to 5 GiB; 8 MiB parts allow files up to 78 GiB).
pub const PART: usize = 8 << 20;

/// Parts uploading at once: the upload's memory is about this many parts, and two keep a
/// link busy while the next part is read and hashed.
const PARTS_IN_FLIGHT: usize = 2;

fn store_error(
    op: &'static str,
    key: &ObjectPath,
) -> impl FnOnce(object_store::Error) -> ScaleError {
    let key = key.to_string();
    move |source| ScaleError::Store { op, key, source }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ScaleError + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ScaleError::Vanished {
                path: path.to_path_buf(),
            }
        } else {
            ScaleError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// Put the file at `path` as `key`, checking on the way that it still holds `entry`'s bytes
/// (a file replaced by rename since the scan, the store's `MANIFEST.prev`, would otherwise go
/// up under a key its bytes do not have: [`ScaleError::Vanished`], scan again). False when
/// the object was there already: its name is its content's hash, so its bytes are these.
pub async fn upload(
    store: &dyn ObjectStore,
    key: &ObjectPath,
    entry: &FileEntry,
    path: &Path,
    part: usize,
) -> Result<bool, ScaleError> {
    let mut file = tokio::fs::File::open(path).await.map_err(io_error(path))?;
    let vanished = || ScaleError::Vanished {
        path: path.to_path_buf(),
    };
    if entry.size <= part as u64 {
        // One more byte than expected tells a file that grew since the scan.
        let mut bytes = Vec::with_capacity(entry.size as usize + 1);
        (&mut file)
            .take(entry.size + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(io_error(path))?;
        if bytes.len() as u64 != entry.size
            || blake3::hash(&bytes).to_hex().as_str() != entry.blake3
        {
            return Err(vanished());
        }
        return match store
            .put_opts(key, PutPayload::from(bytes), super::put_create())
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(source) => Err(store_error("put", key)(source)),
        };
    }
    // A multipart upload cannot be create-only on every S3: ask first. Two writers racing
    // on one object put the same bytes under the same name, so either may win.
    match store.head(key).await {
        Ok(_) => return Ok(false),
        Err(object_store::Error::NotFound { .. }) => {}
        Err(source) => return Err(store_error("head", key)(source)),
    }
    let started = store
        .put_multipart(key)
        .await
        .map_err(store_error("start a multipart upload of", key))?;
    let mut upload = WriteMultipart::new_with_chunk_size(started, part);
    let mut hasher = blake3::Hasher::new();
    let (mut buf, mut len) = (vec![0; part], 0u64);
    let read = loop {
        let n = match read_full(&mut file, &mut buf).await {
            Ok(n) => n,
            Err(e) => break Err(io_error(path)(e)),
        };
        if n == 0 {
            break Ok(());
        }
        len += n as u64;
        if len > entry.size {
            break Err(vanished());
        }
        hasher.update(&buf[..n]);
        if let Err(source) = upload.wait_for_capacity(PARTS_IN_FLIGHT).await {
            break Err(store_error("put a part of", key)(source));
        }
        upload.write(&buf[..n]);
    };
    let read = read.and_then(|()| {
        if len == entry.size && hasher.finalize().to_hex().as_str() == entry.blake3 {
            Ok(())
        } else {
            Err(vanished())
        }
    });
    if let Err(e) = read {
        // Parts already up are removed with the upload; a failed abort leaves them to the
        // bucket's lifecycle rule for incomplete uploads (`docs/scale-out.md`).
        if let Err(abort) = upload.abort().await {
            tracing::warn!(key = %key, error = %abort, "object store: cannot abort an upload");
        }
        return Err(e);
    }
    upload
        .finish()
        .await
        .map_err(store_error("complete the multipart upload of", key))?;
    Ok(true)
}

/// Fill `buf` unless the file ends first; the bytes read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Fetch `key` as the manifest's `file` into `dest` (its directory exists): streamed into a
/// temporary file, hashed on the way, renamed into place and made durable only when it is
/// `file`'s bytes; anything else leaves `dest` as it was.
pub async fn download(
    store: &dyn ObjectStore,
    key: &ObjectPath,
    file: &FileEntry,
    dest: &Path,
) -> Result<(), ScaleError> {
    let io = |source| ScaleError::Io {
        path: dest.to_path_buf(),
        source,
    };
    let mut stream = store
        .get(key)
        .await
        .map_err(store_error("get", key))?
        .into_stream();
    let mut out = crate::fsio::create(dest).map_err(io)?;
    let mut hasher = blake3::Hasher::new();
    let mut len = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(store_error("get", key))?;
        len += chunk.len() as u64;
        if len > file.size {
            break;
        }
        hasher.update(&chunk);
        out.write_all(&chunk).map_err(io)?;
    }
    let actual = hasher.finalize().to_hex().to_string();
    if len != file.size || actual != file.blake3 {
        // Dropped uncommitted: the temporary file goes with it.
        return Err(ScaleError::HashMismatch {
            key: key.to_string(),
            path: file.path.clone(),
            expected: file.blake3.clone(),
            expected_len: file.size,
            actual,
            actual_len: len,
        });
    }
    out.commit_and_sync_dir().map_err(io)
}

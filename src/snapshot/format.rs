//! The on-disk format of snapshot files: a fixed 64-byte header followed by an rkyv payload.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "IOFDSNAP"
//!      8     4  format version (u32 LE)
//!     12     4  payload kind (u32 LE): 1 = product shard, 2 = dictionaries
//!     16     8  payload length in bytes (u64 LE)
//!     24    32  blake3 hash of the payload
//!     56     4  archived-layout tag (u32 LE), see [`layout_tag`]
//!     60     4  reserved, zero
//!     64     …  payload (rkyv archive), 16-byte aligned because the header is 64 bytes
//! ```
//!
//! The file is exactly `64 + payload length` bytes long: anything else is a truncated or
//! damaged file. Everything here is safe code over byte slices; mapping lives in `mmap.rs`.

use std::mem::{align_of, size_of};

use crate::catalog::{ArchivedDictionaries, ArchivedProduct, Product, ProductId};

/// The first eight bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"IOFDSNAP";

/// Bumped whenever the header or the archived model changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// Header size; a multiple of [`PAYLOAD_ALIGN`] so the payload starts aligned in a mapping.
pub const HEADER_LEN: usize = 64;

/// Alignment the rkyv payload needs (the archived model holds nothing wider than 8 bytes;
/// 16 leaves headroom and matches `rkyv::util::AlignedVec`'s default).
pub const PAYLOAD_ALIGN: usize = 16;

/// Largest shard count a store uses.
pub const MAX_SHARDS: u32 = 4096;

const _: () = assert!(HEADER_LEN % PAYLOAD_ALIGN == 0);

/// What a snapshot file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// An archived [`Shard`].
    Shard,
    /// An archived [`crate::catalog::Dictionaries`].
    Dictionaries,
}

impl PayloadKind {
    fn code(self) -> u32 {
        match self {
            PayloadKind::Shard => 1,
            PayloadKind::Dictionaries => 2,
        }
    }

    fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(PayloadKind::Shard),
            2 => Some(PayloadKind::Dictionaries),
            _ => None,
        }
    }
}

impl std::fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PayloadKind::Shard => "product shard",
            PayloadKind::Dictionaries => "dictionaries",
        })
    }
}

/// The products of one shard, sorted by id with no duplicates.
#[derive(Debug, Default, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Shard {
    /// Sorted by id, ids unique.
    pub products: Vec<Product>,
}

/// A fingerprint of the archived model's memory layout. A build whose `Product` or
/// `Dictionaries` layout differs refuses the files of another instead of misreading them;
/// it is a safety net, not a substitute for bumping [`FORMAT_VERSION`].
pub fn layout_tag() -> u32 {
    let parts = [
        size_of::<ArchivedProduct>(),
        align_of::<ArchivedProduct>(),
        size_of::<ArchivedDictionaries>(),
        align_of::<ArchivedDictionaries>(),
        size_of::<crate::catalog::ArchivedSize>(),
        size_of::<crate::catalog::ArchivedPrices>(),
        size_of::<crate::catalog::ArchivedDescription>(),
        size_of::<crate::catalog::ArchivedParameter>(),
    ];
    // FNV-1a over the sizes: stable across builds and platforms of the same layout.
    let mut h: u32 = 0x811c_9dc5;
    for p in parts {
        for b in (p as u64).to_le_bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// The decoded header of a snapshot file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: PayloadKind,
    pub payload_len: u64,
    pub hash: [u8; 32],
}

/// Why a header was refused; the caller adds the file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    TooShort(usize),
    BadMagic,
    Version(u32),
    UnknownKind(u32),
    WrongKind {
        expected: PayloadKind,
        found: PayloadKind,
    },
    Layout(u32),
    Reserved,
    Length {
        declared: u64,
        actual: u64,
    },
}

impl std::fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderProblem::TooShort(n) => write!(
                f,
                "truncated: {n} bytes, shorter than the {HEADER_LEN}-byte header"
            ),
            HeaderProblem::BadMagic => f.write_str("not a snapshot file (bad magic)"),
            HeaderProblem::Version(v) => write!(
                f,
                "format version {v} is not supported (this build reads {FORMAT_VERSION})"
            ),
            HeaderProblem::UnknownKind(k) => write!(f, "unknown payload kind {k}"),
            HeaderProblem::WrongKind { expected, found } => {
                write!(f, "holds {found}, expected {expected}")
            }
            HeaderProblem::Layout(tag) => write!(
                f,
                "archived layout {tag:#010x} differs from this build's {:#010x} (written by an incompatible build)",
                layout_tag()
            ),
            HeaderProblem::Reserved => f.write_str("reserved header bytes are not zero (damaged header)"),
            HeaderProblem::Length { declared, actual } => write!(
                f,
                "truncated or damaged: header declares a {declared}-byte payload, file holds {actual}"
            ),
        }
    }
}

/// Encode the header for `payload` of `kind`.
pub fn encode_header(kind: PayloadKind, payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&kind.code().to_le_bytes());
    h[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    h[24..56].copy_from_slice(blake3::hash(payload).as_bytes());
    h[56..60].copy_from_slice(&layout_tag().to_le_bytes());
    h
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a)
}

/// Check the header of a whole file's bytes: magic, version, kind, layout and that the file
/// length is exactly header + payload. The payload hash is returned, not checked: hashing is
/// the caller's step so that it can be timed and reported separately.
pub fn decode_header(file: &[u8], expected: PayloadKind) -> Result<Header, HeaderProblem> {
    decode_header_of(file, file.len() as u64, expected)
}

/// [`decode_header`] from the file's first bytes (`head`, at least the header) and its
/// length: an open checks the header without touching the mapping, whose first fault would
/// read ahead far into the payload.
pub fn decode_header_of(
    file: &[u8],
    file_len: u64,
    expected: PayloadKind,
) -> Result<Header, HeaderProblem> {
    if file.len() < HEADER_LEN || file_len < HEADER_LEN as u64 {
        return Err(HeaderProblem::TooShort(file.len().min(file_len as usize)));
    }
    if file[0..8] != MAGIC {
        return Err(HeaderProblem::BadMagic);
    }
    let version = le_u32(&file[8..12]);
    if version != FORMAT_VERSION {
        return Err(HeaderProblem::Version(version));
    }
    let code = le_u32(&file[12..16]);
    let kind = PayloadKind::from_code(code).ok_or(HeaderProblem::UnknownKind(code))?;
    if kind != expected {
        return Err(HeaderProblem::WrongKind {
            expected,
            found: kind,
        });
    }
    let layout = le_u32(&file[56..60]);
    if layout != layout_tag() {
        return Err(HeaderProblem::Layout(layout));
    }
    if file[60..64].iter().any(|&b| b != 0) {
        return Err(HeaderProblem::Reserved);
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&file[16..24]);
    let payload_len = u64::from_le_bytes(len);
    let actual = file_len - HEADER_LEN as u64;
    if payload_len != actual {
        return Err(HeaderProblem::Length {
            declared: payload_len,
            actual,
        });
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&file[24..56]);
    Ok(Header {
        kind,
        payload_len,
        hash,
    })
}

/// A fixed integer mixer (the splitmix64 finalizer) so that sequential ids spread evenly over
/// shards. Part of the format: changing it moves products between shards, and a store
/// written with another mixer is refused at load (products found in the wrong shard).
#[inline]
pub fn mix(id: ProductId) -> u64 {
    let mut x = id;
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The shard of `id` among `shard_count` shards (a power of two).
#[inline]
pub fn shard_of(id: ProductId, shard_count: u32) -> u32 {
    debug_assert!(shard_count.is_power_of_two());
    (mix(id) & u64::from(shard_count - 1)) as u32
}

/// Lowercase hex of the first 16 bytes of a content id, used in file names: 128 bits make an
/// accidental collision between two shards of one store negligible.
pub fn short_hex(id: &[u8; 32]) -> String {
    hex::encode(&id[..16])
}

/// File name of a shard file: index and content, so unchanged shards keep their file.
pub fn shard_file_name(index: u32, content_id: &[u8; 32]) -> String {
    format!("shard-{index:04}-{}.snap", short_hex(content_id))
}

/// File name of a dictionaries file.
pub fn dicts_file_name(content_id: &[u8; 32]) -> String {
    format!("dicts-{}.snap", short_hex(content_id))
}

/// The content part of a snapshot file name we wrote, or `None` for any other name.
/// Strict on purpose: names come from the manifest, a file on disk, and must never name a
/// path outside the store directory.
pub fn parse_file_name(name: &str) -> Option<(FileRole, &str)> {
    let stem = name.strip_suffix(".snap")?;
    let (role, hex) = if let Some(rest) = stem.strip_prefix("shard-") {
        let (index, hex) = rest.split_once('-')?;
        if index.len() != 4 || !index.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        (FileRole::Shard(index.parse().ok()?), hex)
    } else {
        (FileRole::Dictionaries, stem.strip_prefix("dicts-")?)
    };
    let hex_ok = hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex_ok.then_some((role, hex))
}

/// Which kind of snapshot file a name denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRole {
    /// A shard file with its index.
    Shard(u32),
    Dictionaries,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let payload = b"0123456789abcdef";
        let mut file = encode_header(PayloadKind::Shard, payload).to_vec();
        file.extend_from_slice(payload);
        let h = decode_header(&file, PayloadKind::Shard).unwrap();
        assert_eq!(h.payload_len, 16);
        assert_eq!(h.hash, *blake3::hash(payload).as_bytes());
        assert_eq!(h.kind, PayloadKind::Shard);
    }

    #[test]
    fn header_problems_are_detected() {
        let payload = b"0123456789abcdef";
        let mut file = encode_header(PayloadKind::Shard, payload).to_vec();
        file.extend_from_slice(payload);

        assert_eq!(
            decode_header(&file[..10], PayloadKind::Shard),
            Err(HeaderProblem::TooShort(10))
        );
        assert_eq!(
            decode_header(&file[..70], PayloadKind::Shard),
            Err(HeaderProblem::Length {
                declared: 16,
                actual: 6
            })
        );
        assert_eq!(
            decode_header(&file, PayloadKind::Dictionaries),
            Err(HeaderProblem::WrongKind {
                expected: PayloadKind::Dictionaries,
                found: PayloadKind::Shard
            })
        );
        let mut bad = file.clone();
        bad[0] = b'X';
        assert_eq!(
            decode_header(&bad, PayloadKind::Shard),
            Err(HeaderProblem::BadMagic)
        );
        let mut bad = file.clone();
        bad[8] = 99;
        assert_eq!(
            decode_header(&bad, PayloadKind::Shard),
            Err(HeaderProblem::Version(99))
        );
        let mut bad = file.clone();
        bad[12] = 7;
        assert_eq!(
            decode_header(&bad, PayloadKind::Shard),
            Err(HeaderProblem::UnknownKind(7))
        );
        let mut bad = file.clone();
        bad[62] = 1;
        assert_eq!(
            decode_header(&bad, PayloadKind::Shard),
            Err(HeaderProblem::Reserved)
        );
        let mut bad = file;
        bad[56] ^= 1;
        assert!(matches!(
            decode_header(&bad, PayloadKind::Shard),
            Err(HeaderProblem::Layout(_))
        ));
    }

    #[test]
    fn mixer_is_pinned_and_spreads_sequential_ids() {
        // Pinned values: the mixer is part of the file format.
        assert_eq!(mix(0), 0);
        assert_eq!(mix(1), 0x5692_161d_100b_05e5);
        assert_eq!(mix(123_456_789), 0xf21c_87d4_233f_fd60);
        let count = 64u32;
        let mut buckets = vec![0u32; count as usize];
        for id in 1..=64_000u64 {
            buckets[shard_of(id, count) as usize] += 1;
        }
        let (min, max) = (
            *buckets.iter().min().unwrap(),
            *buckets.iter().max().unwrap(),
        );
        assert!(min > 850 && max < 1150, "uneven spread: {min}..{max}");
        assert!((1..1000).all(|id| shard_of(id, 1) == 0));
    }

    #[test]
    fn file_names_parse_strictly() {
        let id = [0xabu8; 32];
        let shard = shard_file_name(12, &id);
        assert_eq!(shard, format!("shard-0012-{}.snap", "ab".repeat(16)));
        assert_eq!(
            parse_file_name(&shard),
            Some((FileRole::Shard(12), "ab".repeat(16).as_str()))
        );
        let dicts = dicts_file_name(&id);
        assert_eq!(
            parse_file_name(&dicts).map(|(r, _)| r),
            Some(FileRole::Dictionaries)
        );
        for bad in [
            "../shard-0001-abababababababababababababababab.snap",
            "shard-1-abababababababababababababababab.snap",
            "shard-0001-ABABABABABABABABABABABABABABABAB.snap",
            "shard-0001-abab.snap",
            "dicts-abababababababababababababababab.snap.tmp",
            "MANIFEST",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }
}

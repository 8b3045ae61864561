//! Low-level XML output: escaping, CDATA, numbers and dates written straight into a byte
//! buffer, without heap allocation and without the `fmt` machinery.
//!
//! The writers build each product in a reused `Vec<u8>` (see [`with_scratch`]) and hand the
//! finished bytes to the caller's `impl Write` in one call, so these primitives are
//! infallible appends. Text is scanned for the few bytes that need attention and copied in runs.

use std::cell::Cell;

use jiff::civil::DateTime;
use rust_decimal::Decimal;

/// `YYYY-MM-DD hh:mm:ss`, the date form every IOF file uses (no time zone, local time).
pub fn format_datetime(dt: DateTime) -> String {
    let mut buf = [0u8; 19];
    datetime_bytes(dt, &mut buf);
    // Only ASCII digits and separators were written.
    String::from_utf8_lossy(&buf).into_owned()
}

/// Fill `buf` with `YYYY-MM-DD hh:mm:ss`. Years outside 0..=9999 (which jiff allows down to
/// -9999) are clamped: the IOF patterns require four digits and such dates are not real offers.
fn datetime_bytes(dt: DateTime, buf: &mut [u8; 19]) {
    fn two(buf: &mut [u8], at: usize, v: i8) {
        let v = v.clamp(0, 99) as u8;
        buf[at] = b'0' + v / 10;
        buf[at + 1] = b'0' + v % 10;
    }
    let year = dt.year().clamp(0, 9999) as u16;
    buf[0] = b'0' + (year / 1000) as u8;
    buf[1] = b'0' + (year / 100 % 10) as u8;
    buf[2] = b'0' + (year / 10 % 10) as u8;
    buf[3] = b'0' + (year % 10) as u8;
    buf[4] = b'-';
    two(buf, 5, dt.month());
    buf[7] = b'-';
    two(buf, 8, dt.day());
    buf[10] = b' ';
    two(buf, 11, dt.hour());
    buf[13] = b':';
    two(buf, 14, dt.minute());
    buf[16] = b':';
    two(buf, 17, dt.second());
}

/// Bytes that need a look while escaping: bit 1 in attribute values, bit 2 in CDATA.
const ATTR: u8 = 1;
const CDATA: u8 = 2;

const fn special_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        // C0 controls: dropped (not allowed in XML 1.0), except tab/LF/CR which are legal;
        // in attributes those three are written as character references so that attribute
        // value normalization does not turn them into spaces.
        t[b] = if b == 0x09 || b == 0x0A || b == 0x0D {
            ATTR
        } else {
            ATTR | CDATA
        };
        b += 1;
    }
    t[b'&' as usize] = ATTR;
    t[b'<' as usize] = ATTR;
    t[b'>' as usize] = ATTR;
    t[b'"' as usize] = ATTR;
    t[b'\'' as usize] = ATTR;
    t[b']' as usize] = CDATA;
    // Lead byte of U+FFFE / U+FFFF, the two non-characters XML 1.0 forbids that valid UTF-8
    // can hold (surrogates cannot occur in a `str`).
    t[0xEF] = ATTR | CDATA;
    t
}

static SPECIAL: [u8; 256] = special_table();

/// Is `bytes[i..]` the UTF-8 form of U+FFFE or U+FFFF?
#[inline]
fn is_nonchar(bytes: &[u8], i: usize) -> bool {
    bytes.get(i + 1) == Some(&0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF))
}

/// Append-only XML output into a byte buffer.
pub(crate) trait XmlBuf {
    /// Bytes as they are (markup the caller knows to be well-formed).
    fn raw(&mut self, b: &[u8]);
    /// Text escaped for an attribute value (`&<>"'`, tab/LF/CR as references, controls dropped).
    fn escaped(&mut self, s: &str);
    /// `<![CDATA[...]]>` holding `s`; `]]>` inside is split across two sections.
    fn cdata(&mut self, s: &str);
    /// ` name="value"` with the value escaped.
    fn attr(&mut self, name: &[u8], value: &str);
    /// ` name="n"`.
    fn attr_u64(&mut self, name: &[u8], n: u64);
    /// ` name="d"` with at least `min_places` decimals (see [`XmlBuf::decimal`]).
    fn attr_decimal(&mut self, name: &[u8], d: Decimal, min_places: u32);
    /// ` name="YYYY-MM-DD hh:mm:ss"`.
    fn attr_datetime(&mut self, name: &[u8], dt: DateTime);
    fn u64(&mut self, n: u64);
    /// A decimal in plain notation: trailing zeros trimmed down to `min_places` decimals and
    /// padded up to it (`23` with 1 → `23.0`, `1563.60` with 0 → `1563.6`). Zero has no sign.
    fn decimal(&mut self, d: Decimal, min_places: u32);
}

impl XmlBuf for Vec<u8> {
    #[inline]
    fn raw(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }

    fn escaped(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if SPECIAL[b as usize] & ATTR == 0 {
                i += 1;
                continue;
            }
            let replacement: &[u8] = match b {
                b'&' => b"&amp;",
                b'<' => b"&lt;",
                b'>' => b"&gt;",
                b'"' => b"&quot;",
                b'\'' => b"&apos;",
                b'\t' => b"&#9;",
                b'\n' => b"&#10;",
                b'\r' => b"&#13;",
                0xEF => {
                    if is_nonchar(bytes, i) {
                        self.extend_from_slice(&bytes[start..i]);
                        i += 3;
                        start = i;
                    } else {
                        i += 1;
                    }
                    continue;
                }
                _ => b"",
            };
            self.extend_from_slice(&bytes[start..i]);
            self.extend_from_slice(replacement);
            i += 1;
            start = i;
        }
        self.extend_from_slice(&bytes[start..]);
    }

    fn cdata(&mut self, s: &str) {
        self.extend_from_slice(b"<![CDATA[");
        let bytes = s.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if SPECIAL[b as usize] & CDATA == 0 {
                i += 1;
                continue;
            }
            match b {
                b']' => {
                    if bytes.get(i + 1) == Some(&b']') && bytes.get(i + 2) == Some(&b'>') {
                        // Close after "]]" and reopen before ">": the reader joins the parts.
                        self.extend_from_slice(&bytes[start..i + 2]);
                        self.extend_from_slice(b"]]><![CDATA[");
                        i += 2;
                        start = i;
                    } else {
                        i += 1;
                    }
                }
                0xEF => {
                    if is_nonchar(bytes, i) {
                        self.extend_from_slice(&bytes[start..i]);
                        i += 3;
                        start = i;
                    } else {
                        i += 1;
                    }
                }
                _ => {
                    // A control character XML 1.0 cannot carry: dropped.
                    self.extend_from_slice(&bytes[start..i]);
                    i += 1;
                    start = i;
                }
            }
        }
        self.extend_from_slice(&bytes[start..]);
        self.extend_from_slice(b"]]>");
    }

    #[inline]
    fn attr(&mut self, name: &[u8], value: &str) {
        self.push(b' ');
        self.extend_from_slice(name);
        self.extend_from_slice(b"=\"");
        self.escaped(value);
        self.push(b'"');
    }

    #[inline]
    fn attr_u64(&mut self, name: &[u8], n: u64) {
        self.push(b' ');
        self.extend_from_slice(name);
        self.extend_from_slice(b"=\"");
        self.u64(n);
        self.push(b'"');
    }

    #[inline]
    fn attr_decimal(&mut self, name: &[u8], d: Decimal, min_places: u32) {
        self.push(b' ');
        self.extend_from_slice(name);
        self.extend_from_slice(b"=\"");
        self.decimal(d, min_places);
        self.push(b'"');
    }

    fn attr_datetime(&mut self, name: &[u8], dt: DateTime) {
        let mut buf = [0u8; 19];
        datetime_bytes(dt, &mut buf);
        self.push(b' ');
        self.extend_from_slice(name);
        self.extend_from_slice(b"=\"");
        self.extend_from_slice(&buf);
        self.push(b'"');
    }

    #[inline]
    fn u64(&mut self, n: u64) {
        let mut buf = [0u8; 20];
        let at = digits_u64(n, &mut buf);
        self.extend_from_slice(&buf[at..]);
    }

    fn decimal(&mut self, d: Decimal, min_places: u32) {
        let mantissa = d.mantissa();
        let mut scale = d.scale();
        let mut m = mantissa.unsigned_abs();
        while scale > min_places && m % 10 == 0 && m != 0 {
            m /= 10;
            scale -= 1;
        }
        if m == 0 {
            scale = 0;
        }
        // A Decimal mantissa has at most 29 digits; the scale at most 28.
        let mut buf = [0u8; 40];
        let at = match u64::try_from(m) {
            Ok(small) => digits_u64(small, &mut buf),
            Err(_) => digits_u128(m, &mut buf),
        };
        let digits = &buf[at..];
        if mantissa < 0 && m != 0 {
            self.push(b'-');
        }
        let scale = scale as usize;
        if scale == 0 {
            self.extend_from_slice(digits);
        } else if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            self.extend_from_slice(int);
            self.push(b'.');
            self.extend_from_slice(frac);
        } else {
            self.extend_from_slice(b"0.");
            self.resize(self.len() + (scale - digits.len()), b'0');
            self.extend_from_slice(digits);
        }
        let pad = (min_places as usize).saturating_sub(scale);
        if pad > 0 {
            if scale == 0 {
                self.push(b'.');
            }
            self.resize(self.len() + pad, b'0');
        }
    }
}

static PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Write the decimal digits of `n` at the end of `buf`; returns where they start.
#[inline]
fn digits_u64(mut n: u64, buf: &mut [u8]) -> usize {
    let mut at = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + n as u8;
    }
    at
}

fn digits_u128(mut n: u128, buf: &mut [u8]) -> usize {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return at;
        }
    }
}

/// Is `c` a character XML names may contain, restricted to ASCII and the Latin-1 and
/// Latin Extended-A letters? Both the XML 1.0 4th and 5th edition name rules accept these,
/// so whichever one a consumer's parser follows, the token is valid.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '-' | '.' | '_')
        || (('\u{C0}'..='\u{17F}').contains(&c) && c != '\u{D7}' && c != '\u{F7}')
}

/// Write `s` as an `xs:NMTOKEN`: whitespace runs become `T` (so `2026-11-22 10:00` reads
/// as an ISO-style date-time) and characters a name token cannot hold are dropped.
/// Returns whether anything was written.
pub(crate) fn nmtoken(out: &mut Vec<u8>, s: &str) -> bool {
    let before = out.len();
    let mut in_space = false;
    for c in s.trim().chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(b'T');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        if is_name_char(c) || c == ':' {
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
    out.len() > before
}

/// Write `s` as an `xs:NCName` (what full.xsd demands of `unit@name`): whitespace becomes
/// `_`, other characters a name cannot hold are dropped, and a name that would start with a
/// digit, `-` or `.` gets a leading `_`. An empty result is written as `_`.
pub(crate) fn ncname(out: &mut Vec<u8>, s: &str) {
    let before = out.len();
    for c in s.trim().chars() {
        let c = if c.is_whitespace() { '_' } else { c };
        if !is_name_char(c) {
            continue;
        }
        if out.len() == before && !(c.is_alphabetic() || c == '_') {
            out.push(b'_');
        }
        let mut utf8 = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
    if out.len() == before {
        out.push(b'_');
    }
}

/// Largest scratch buffer kept between calls; a rare huge product does not pin its memory.
const SCRATCH_KEEP: usize = 4 << 20;

thread_local! {
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Run `f` with this thread's reusable output buffer (empty on entry). Re-entrant calls get
/// a fresh buffer rather than a conflict.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut buf = cell.take();
        buf.clear();
        let result = f(&mut buf);
        if buf.capacity() <= SCRATCH_KEEP {
            buf.clear();
            cell.set(buf);
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn out(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).expect("utf-8")
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    #[test]
    fn dates_have_the_iof_form() {
        let dt = jiff::civil::date(2026, 11, 2).at(9, 5, 7, 0);
        assert_eq!(format_datetime(dt), "2026-11-02 09:05:07");
        let early = jiff::civil::date(33, 1, 1).at(0, 0, 0, 0);
        assert_eq!(format_datetime(early), "0033-01-01 00:00:00");
        assert_eq!(
            out(|o| o.attr_datetime(b"generated", dt)),
            " generated=\"2026-11-02 09:05:07\""
        );
    }

    #[test]
    fn attributes_escape_every_special_character() {
        assert_eq!(
            out(|o| o.attr(b"name", "H&M <\"x\"> 'y'")),
            " name=\"H&amp;M &lt;&quot;x&quot;&gt; &apos;y&apos;\""
        );
        assert_eq!(out(|o| o.escaped("a\tb\nc\rd")), "a&#9;b&#10;c&#13;d");
        // Controls and the U+FFFE/U+FFFF non-characters are dropped; other text passes.
        assert_eq!(
            out(|o| o.escaped("a\u{0}b\u{1}c\u{B}\u{1F}d\u{FFFE}e\u{FFFF}f")),
            "abcdef"
        );
        assert_eq!(
            out(|o| o.escaped("Zażółć gęślą jaźń ﻿€")),
            "Zażółć gęślą jaźń ﻿€"
        );
        assert_eq!(out(|o| o.escaped("")), "");
    }

    #[test]
    fn cdata_splits_its_terminator_and_drops_controls() {
        assert_eq!(out(|o| o.cdata("a]]>b")), "<![CDATA[a]]]]><![CDATA[>b]]>");
        assert_eq!(
            out(|o| o.cdata("]]>]]>")),
            "<![CDATA[]]]]><![CDATA[>]]]]><![CDATA[>]]>"
        );
        assert_eq!(out(|o| o.cdata("]] ]> ]")), "<![CDATA[]] ]> ]]]>");
        assert_eq!(
            out(|o| o.cdata("<b>&amp;\"'</b>\u{7}\t\n")),
            "<![CDATA[<b>&amp;\"'</b>\t\n]]>"
        );
        assert_eq!(out(|o| o.cdata("x\u{FFFF}y")), "<![CDATA[xy]]>");
    }

    #[test]
    fn decimals_are_plain_and_allocation_free() {
        let cases = [
            ("1563.60", 0, "1563.6"),
            ("1563.60", 2, "1563.60"),
            ("1320", 2, "1320.00"),
            ("1320.00", 0, "1320"),
            ("23", 1, "23.0"),
            ("23.00", 1, "23.0"),
            ("8.25", 1, "8.25"),
            ("0", 0, "0"),
            ("0.00", 2, "0.00"),
            ("-0.00", 0, "0"),
            ("-1", 0, "-1"),
            ("-1.000", 0, "-1"),
            ("0.05", 0, "0.05"),
            ("0.5", 3, "0.500"),
            ("102", 3, "102.000"),
            ("12.3456", 2, "12.3456"),
            (
                "79228162514264337593543950335",
                0,
                "79228162514264337593543950335",
            ),
            (
                "-7922816251426433759354395.0335",
                0,
                "-7922816251426433759354395.0335",
            ),
            ("18446744073709551616", 0, "18446744073709551616"),
        ];
        for (input, places, want) in cases {
            assert_eq!(out(|o| o.decimal(dec(input), places)), want, "{input}");
        }
        assert_eq!(out(|o| o.u64(0)), "0");
        assert_eq!(out(|o| o.u64(u64::MAX)), "18446744073709551615");
        assert_eq!(out(|o| o.attr_u64(b"id", 1234567)), " id=\"1234567\"");
    }

    #[test]
    fn name_tokens_are_sanitized() {
        let tok = |s: &str| {
            let mut v = Vec::new();
            let wrote = nmtoken(&mut v, s);
            (wrote, String::from_utf8(v).expect("utf-8"))
        };
        assert_eq!(
            tok(" 2026-11-22 10:00:00 "),
            (true, "2026-11-22T10:00:00".into())
        );
        assert_eq!(tok("a&b<c>"), (true, "abc".into()));
        assert_eq!(tok("  "), (false, String::new()));
        let nc = |s: &str| out(|o| ncname(o, s));
        assert_eq!(nc("szt."), "szt.");
        assert_eq!(nc("para butów"), "para_butów");
        assert_eq!(nc("2-pack"), "_2-pack");
        assert_eq!(nc("m:2"), "m2");
        assert_eq!(nc("€"), "_");
    }

    #[test]
    fn scratch_buffers_are_reused_and_reentrant() {
        with_scratch(|b| {
            b.extend_from_slice(&[1; 1000]);
            let inner = with_scratch(|inner| {
                assert!(inner.is_empty());
                inner.push(2);
                inner.len()
            });
            assert_eq!(inner, 1);
        });
        with_scratch(|b| {
            assert!(b.is_empty());
            assert!(b.capacity() >= 1000, "the buffer is kept between calls");
        });
    }
}

//! Encoders the corpus generator needs, written out here (RFC facts, no mail crate): RFC 2047
//! encoded words, base64 and quoted-printable bodies, RFC 5322 dates.

use std::fmt::Write as _;

/// One or more RFC 2047 encoded words for `text` (UTF-8, B or Q), each at most 75 characters,
/// split on character boundaries and folded.
pub fn encode_word(text: &str, base64: bool) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    let budget = 75 - "=?UTF-8?B??=".len();
    for c in text.chars() {
        let mut next = chunk.clone();
        next.push(c);
        let len = if base64 { next.len().div_ceil(3) * 4 } else { q_encode(&next).len() };
        if len > budget && !chunk.is_empty() {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    let enc = |w: &String| {
        if base64 {
            format!("=?UTF-8?B?{}?=", base64_encode(w.as_bytes(), usize::MAX))
        } else {
            format!("=?UTF-8?Q?{}?=", q_encode(w))
        }
    };
    words.iter().map(enc).collect::<Vec<_>>().join("\r\n ")
}

/// RFC 2047 "Q" encoding: space as `_`, letters and digits as is, every other byte `=XX`.
fn q_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b' ' => out.push('_'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "={b:02X}");
            }
        }
    }
    out
}

/// Base64 (RFC 4648) with lines of at most `line` characters, CRLF-separated.
pub fn base64_encode(data: &[u8], line: usize) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 38 + 4);
    let mut col = 0;
    for group in data.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        let chars = [18, 12, 6, 0].map(|s| ABC[(n >> s & 63) as usize] as char);
        let keep = group.len() + 1;
        if col + 4 > line {
            out.push_str("\r\n");
            col = 0;
        }
        for (i, c) in chars.iter().enumerate() {
            out.push(if i < keep { *c } else { '=' });
        }
        col += 4;
    }
    out
}

/// Quoted-printable (RFC 2045 §6.7) of text with CRLF line ends, soft breaks before 76.
pub fn qp_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 5 / 4);
    for (i, line) in text.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let mut col = 0;
        let bytes = line.as_bytes();
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let piece = match b {
                b'=' => "=3D".to_owned(),
                b' ' | b'\t' if last => format!("={b:02X}"),
                33..=126 | b' ' | b'\t' => (b as char).to_string(),
                _ => format!("={b:02X}"),
            };
            if col + piece.len() > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            col += piece.len();
            out.push_str(&piece);
        }
    }
    out
}

/// `secs` since the Unix epoch as an RFC 5322 date in a zone `offset_min` minutes east of UTC.
pub fn rfc5322_date(secs: i64, offset_min: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let local = secs + offset_min * 60;
    let (days, rem) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    let sign = if offset_min < 0 { '-' } else { '+' };
    let off = offset_min.abs();
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(mo - 1) as usize],
        y,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        off / 60,
        off % 60
    )
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

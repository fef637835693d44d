//! The deterministic corpus generator behind `skua-bench corpus`.
//!
//! Message `i` of seed `s` is drawn from a ChaCha8 stream keyed by `s` with stream number `i`,
//! so it is the same bytes on every machine and whatever the count asked for. Kinds: plain text,
//! quoted-printable text with non-ASCII, multipart/alternative (text + HTML) and multipart/mixed
//! with base64 attachments; headers carry RFC 2047 encoded words; sizes spread from about 1 KiB
//! to `max_size`, most of them small as in real mailboxes.

use std::fmt::Write as _;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::encode::{base64_encode, encode_word, qp_encode, rfc5322_date};
use super::words::{ATTACHMENTS, DOMAINS, NON_ASCII_WORDS, PEOPLE, SUBJECTS, WORDS};

/// The shape of a generated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// text/plain, 7bit.
    Plain,
    /// text/plain; charset=utf-8, quoted-printable, with non-ASCII words.
    PlainQp,
    /// multipart/alternative of text/plain and text/html.
    Alternative,
    /// multipart/mixed of text/plain and base64 attachments.
    Attachments,
}

/// One generated message and what a parser should find in it.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The RFC 5322 message, CRLF line ends.
    pub bytes: Vec<u8>,
    /// Its kind.
    pub kind: Kind,
    /// The subject, decoded.
    pub subject: String,
    /// Number of attachments.
    pub attachments: usize,
}

/// Generates message `index` of corpus `seed`, aiming at sizes up to `max_size` bytes.
pub fn message(seed: u64, index: u64, max_size: usize) -> Generated {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let target = target_size(&mut rng, max_size);
    let kind = match rng.gen_range(0..100) {
        _ if target > 64 * 1024 => Kind::Attachments,
        0..45 => Kind::Plain,
        45..60 => Kind::PlainQp,
        60..85 => Kind::Alternative,
        _ => Kind::Attachments,
    };
    let subject = SUBJECTS[rng.gen_range(0..SUBJECTS.len())].to_owned();
    let mut m = headers(&mut rng, seed, index, &subject);
    let attachments = match kind {
        Kind::Plain => plain_body(&mut rng, &mut m, target, false),
        Kind::PlainQp => plain_body(&mut rng, &mut m, target, true),
        Kind::Alternative => alternative_body(&mut rng, &mut m, target, index),
        Kind::Attachments => mixed_body(&mut rng, &mut m, target, index),
    };
    Generated { bytes: m.into_bytes(), kind, subject, attachments }
}

/// What [`write_corpus`] wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Total bytes.
    pub bytes: u64,
    /// Messages of each kind: plain, quoted-printable, alternative, with attachments.
    pub kinds: [u32; 4],
    /// Attachments in all.
    pub attachments: u64,
    /// Messages whose subject is an encoded word.
    pub encoded_subjects: u32,
    /// Largest message, bytes.
    pub largest: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [p, q, a, m] = self.kinds;
        write!(
            f,
            "{} bytes: {p} plain, {q} quoted-printable, {a} multipart/alternative, {m} with attachments \
             ({} attachments); {} non-ASCII subjects; largest {} bytes",
            self.bytes, self.attachments, self.encoded_subjects, self.largest
        )
    }
}

/// Writes messages `0..count` of `seed` to `dir` as `NNNNNN.eml`.
pub fn write_corpus(
    dir: &Path,
    seed: u64,
    count: u32,
    max_size: usize,
) -> std::io::Result<Summary> {
    std::fs::create_dir_all(dir)?;
    let mut s = Summary::default();
    for i in 0..count {
        let g = message(seed, u64::from(i), max_size);
        std::fs::write(dir.join(format!("{i:06}.eml")), &g.bytes)?;
        s.bytes += g.bytes.len() as u64;
        s.kinds[g.kind as usize] += 1;
        s.attachments += g.attachments as u64;
        s.encoded_subjects += u32::from(!g.subject.is_ascii());
        s.largest = s.largest.max(g.bytes.len());
    }
    Ok(s)
}

/// A size drawn from a spread like real mail: 60% 1-8 KiB, 25% 8-64 KiB, 12% 64-512 KiB,
/// 3% up to `max_size`; never above `max_size`.
fn target_size(rng: &mut ChaCha8Rng, max_size: usize) -> usize {
    let (lo, hi) = match rng.gen_range(0..100) {
        0..60 => (1 << 10, 8 << 10),
        60..85 => (8 << 10, 64 << 10),
        85..97 => (64 << 10, 512 << 10),
        _ => (512 << 10, max_size.max((512 << 10) + 1)),
    };
    rng.gen_range(lo..hi).min(max_size)
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn address(rng: &mut ChaCha8Rng) -> String {
    let (name, local) = pick(rng, PEOPLE);
    let domain = pick(rng, DOMAINS);
    let display =
        if name.is_ascii() { format!("\"{name}\"") } else { encode_word(name, rng.gen_bool(0.5)) };
    format!("{display} <{local}@{domain}>")
}

fn headers(rng: &mut ChaCha8Rng, seed: u64, index: u64, subject: &str) -> String {
    let mut h = String::new();
    let secs = 1_704_067_200 + index as i64 * 397 + rng.gen_range(0..300);
    let date = rfc5322_date(secs, *pick(rng, &[0, -300, 60, 540, 330]));
    let _ = write!(
        h,
        "Received: from mx{}.example.net by mail.example.org; {date}\r\n",
        rng.gen_range(1..9)
    );
    let _ = write!(h, "From: {}\r\n", address(rng));
    let to: Vec<String> = (0..rng.gen_range(1..4)).map(|_| address(rng)).collect();
    let _ = write!(h, "To: {}\r\n", to.join(",\r\n "));
    if rng.gen_bool(0.3) {
        let _ = write!(h, "Cc: {}\r\n", address(rng));
    }
    let subj = if subject.is_ascii() {
        subject.to_owned()
    } else {
        encode_word(subject, rng.gen_bool(0.5))
    };
    let _ = write!(h, "Subject: {subj}\r\nDate: {date}\r\n");
    let _ = write!(h, "Message-ID: <{seed:x}.{index}@corpus.skua-bench.invalid>\r\n");
    if subject.starts_with("Re:") {
        let _ = write!(h, "In-Reply-To: <{seed:x}.{}@corpus.skua-bench.invalid>\r\n", index / 2);
    }
    h.push_str("MIME-Version: 1.0\r\n");
    h
}

/// Paragraphs of words (some non-ASCII when `utf8`) adding up to about `bytes`, CRLF lines
/// of at most 72 characters.
fn paragraphs(rng: &mut ChaCha8Rng, bytes: usize, utf8: bool) -> String {
    let mut text = String::new();
    let mut line_len = 0;
    while text.len() < bytes {
        let w =
            if utf8 && rng.gen_bool(0.15) { pick(rng, NON_ASCII_WORDS) } else { pick(rng, WORDS) };
        if line_len + w.len() + 1 > 72 {
            text.push_str(if rng.gen_bool(0.15) { ".\r\n\r\n" } else { "\r\n" });
            line_len = 0;
        } else if line_len > 0 {
            text.push(' ');
            line_len += 1;
        }
        text.push_str(w);
        line_len += w.len();
    }
    text.push_str(".\r\n");
    text
}

fn plain_body(rng: &mut ChaCha8Rng, m: &mut String, target: usize, qp: bool) -> usize {
    let body_len = target.saturating_sub(m.len() + 100).max(64);
    if qp {
        m.push_str("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
        m.push_str(&qp_encode(&paragraphs(rng, body_len * 4 / 5, true)));
        m.push_str("\r\n");
    } else {
        m.push_str(
            "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
        );
        m.push_str(&paragraphs(rng, body_len, false));
    }
    0
}

fn alternative_body(rng: &mut ChaCha8Rng, m: &mut String, target: usize, index: u64) -> usize {
    let boundary = format!("=_alt_{index:x}_skua");
    let text = paragraphs(rng, target.saturating_sub(m.len() + 600).max(64) * 2 / 5, true);
    let html = format!(
        "<html><head><meta charset=\"utf-8\"></head><body>\r\n<p>{}</p>\r\n</body></html>\r\n",
        text.replace("\r\n\r\n", "</p>\r\n<p>")
    );
    let _ = write!(m, "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n");
    m.push_str("This is a multi-part message in MIME format.\r\n");
    let _ = write!(
        m,
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    m.push_str(&qp_encode(&text));
    let _ = write!(
        m,
        "\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    m.push_str(&qp_encode(&html));
    let _ = write!(m, "\r\n--{boundary}--\r\n");
    0
}

fn mixed_body(rng: &mut ChaCha8Rng, m: &mut String, target: usize, index: u64) -> usize {
    let boundary = format!("=_mixed_{index:x}_skua");
    let count = rng.gen_range(1..4);
    let _ = write!(m, "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n");
    let _ = write!(m, "--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
    let text_len = rng.gen_range(200..2000);
    m.push_str(&paragraphs(rng, text_len, false));
    // base64 grows data by 4/3 (plus line breaks): size the raw parts so the message lands
    // near the target.
    let raw_total = target.saturating_sub(m.len() + 300 * count) * 3 / 4;
    for _ in 0..count {
        let (stem, ext, mime) = pick(rng, ATTACHMENTS);
        let data: Vec<u8> = (0..(raw_total / count).max(16)).map(|_| rng.r#gen()).collect();
        let name = format!("{stem}.{ext}");
        let param = if name.is_ascii() {
            format!("\"{name}\"")
        } else {
            format!("\"{}\"", encode_word(&name, true))
        };
        let _ = write!(
            m,
            "--{boundary}\r\nContent-Type: {mime}; name={param}\r\nContent-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename={param}\r\n\r\n"
        );
        m.push_str(&base64_encode(&data, 76));
        m.push_str("\r\n");
    }
    let _ = write!(m, "--{boundary}--\r\n");
    count
}

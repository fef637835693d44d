//! Reading an mbox file (`skua import mbox`): messages begin at lines starting `From `
//! (mboxo and mboxrd: a body line `>From ` loses one `>`, as mboxrd escapes every `>*From `);
//! flags come from `Status:` (`R` Seen) and `X-Status:` (`A` Answered, `F` Flagged, `T`
//! Draft, `D` Deleted), keywords from `X-Keywords:`, the UID from `X-UID:`, the internal date
//! from the `From ` line (`From sender Mon Dec  7 10:00:00 2026`). Those headers, written by
//! the mail program that kept the file, are dropped from the imported message.

use std::path::Path;

use anyhow::{Context, bail};
use skua_core::types::{InternalDate, SystemFlags};

use super::{Folder, Message, Source};

/// Reads `file` as the mailbox `mailbox`.
pub(crate) fn read(file: &Path, mailbox: &str) -> anyhow::Result<Source> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    if !data.is_empty() && !data.starts_with(b"From ") {
        bail!("{} is not an mbox file (it does not start with \"From \")", file.display());
    }
    let mut messages = Vec::new();
    let mut current: Option<(Option<InternalDate>, Vec<u8>)> = None;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            if let Some((date, bytes)) = current.take() {
                messages.push(message(bytes, date));
            }
            current = Some((from_line_date(line), Vec::new()));
            continue;
        }
        let Some((_, bytes)) = current.as_mut() else { continue };
        let unescaped = match line.iter().position(|&b| b != b'>') {
            Some(at) if at > 0 && line[at..].starts_with(b"From ") => &line[1..],
            _ => line,
        };
        bytes.extend_from_slice(unescaped);
    }
    if let Some((date, bytes)) = current.take() {
        messages.push(message(bytes, date));
    }
    messages.retain(|m| !m.bytes.is_empty());
    Ok(Source { folders: vec![Folder { name: mailbox.to_owned(), messages }] })
}

/// One message: the mail program's own headers taken out and read for flags.
fn message(mut bytes: Vec<u8>, date: Option<InternalDate>) -> Message {
    // The blank line an mbox puts between messages belongs to the file, not the message.
    if bytes.ends_with(b"\n\n") {
        bytes.pop();
    } else if bytes.ends_with(b"\r\n\r\n") {
        bytes.truncate(bytes.len() - 2);
    }
    // The header ends with its last line's line end; the blank line and the body follow.
    let header_end = find(&bytes, b"\n\n")
        .map(|at| at + 1)
        .or_else(|| find(&bytes, b"\r\n\r\n").map(|at| at + 2))
        .unwrap_or(0);
    let mut system = 0u16;
    let mut keywords = Vec::new();
    let mut uid = None;
    let mut kept = Vec::with_capacity(bytes.len());
    let mut offset = 0;
    for line in bytes[..header_end].split_inclusive(|&b| b == b'\n') {
        offset += line.len();
        let text = String::from_utf8_lossy(line);
        let (field, value) = text.split_once(':').unwrap_or(("", ""));
        let value = value.trim();
        match field.to_ascii_lowercase().as_str() {
            "status" => {
                if value.contains('R') {
                    system |= SystemFlags::SEEN;
                }
            }
            "x-status" => {
                for (letter, flag) in [
                    ('A', SystemFlags::ANSWERED),
                    ('F', SystemFlags::FLAGGED),
                    ('T', SystemFlags::DRAFT),
                    ('D', SystemFlags::DELETED),
                ] {
                    if value.contains(letter) {
                        system |= flag;
                    }
                }
            }
            "x-keywords" => keywords
                .extend(value.split([' ', ',']).filter(|k| !k.is_empty()).map(str::to_owned)),
            "x-uid" => uid = value.parse().ok(),
            _ => kept.extend_from_slice(line),
        }
    }
    kept.extend_from_slice(&bytes[offset..]);
    Message { bytes: kept, system: SystemFlags(system), keywords, date, uid }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The date of `From sender Www Mmm dd hh:mm:ss yyyy` (asctime, UTC as mbox writers use).
fn from_line_date(line: &[u8]) -> Option<InternalDate> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let words: Vec<&str> = text.split_whitespace().collect();
    // From, sender, then weekday month day time year (the last five words).
    let [month, day, time, year] = words.get(words.len().checked_sub(4)?..)? else {
        return None;
    };
    let month = self::month(month)?;
    let day: u32 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(str::parse::<i64>);
    let (h, m, s) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let days = days_from_civil(year, month, day);
    Some(InternalDate { unix_seconds: days * 86_400 + h * 3600 + m * 60 + s, zone_minutes: 0 })
}

/// `Jan`..`Dec` → 1..12.
pub(crate) fn month(name: &str) -> Option<u32> {
    let months =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let at = months.iter().position(|m| m.eq_ignore_ascii_case(name))?;
    Some(u32::try_from(at).expect("twelve") + 1)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    skua_protocols::imap::parser::date::days_from_civil_unchecked(
        year,
        i64::from(month),
        i64::from(day),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_flags_and_escapes() {
        let mbox = b"From a@example.org Mon Dec  7 10:00:00 2026\n\
Subject: one\nStatus: RO\nX-Status: AF\nX-Keywords: Work $Label1\nX-UID: 7\n\n\
body\n>From here\n>>From there\n\n\
From b@example.org Thu Jan  1 00:00:01 1970\nSubject: two\n\nsecond\n";
        let dir = std::env::temp_dir().join(format!("skua-mbox-{}", std::process::id()));
        std::fs::write(&dir, mbox).unwrap();
        let source = read(&dir, "INBOX").unwrap();
        std::fs::remove_file(&dir).unwrap();
        let messages = &source.folders[0].messages;
        assert_eq!(messages.len(), 2);
        let first = &messages[0];
        assert_eq!(first.bytes, b"Subject: one\n\nbody\nFrom here\n>From there\n");
        let expected = SystemFlags::SEEN | SystemFlags::ANSWERED | SystemFlags::FLAGGED;
        assert_eq!(first.system.0, expected);
        assert_eq!(first.keywords, ["Work", "$Label1"]);
        assert_eq!(first.uid, Some(7));
        assert_eq!(first.date.unwrap().unix_seconds, 1_796_637_600);
        assert_eq!(messages[1].date.unwrap().unix_seconds, 1);
        assert_eq!(messages[1].bytes, b"Subject: two\n\nsecond\n");
    }
}

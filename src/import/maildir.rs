//! Reading a Maildir++ tree (`skua import maildir`): INBOX in `DIR/cur` and `DIR/new`, each
//! folder in `DIR/.Name` (`.` separates levels, names in modified UTF-7 as Dovecot writes
//! them). A message's flags are the letters after `:2,` in its file name (`D` Draft, `F`
//! Flagged, `P` passed: `$Forwarded`, `R` replied: Answered, `S` Seen, `T` trashed: Deleted;
//! `a`..`z` the keywords of `dovecot-keywords`); messages in `new/` have none. Its UID comes
//! from `dovecot-uidlist` (versions 1 and 3) when the folder has one; its internal date is
//! the file's modification time, as Dovecot keeps it.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, bail};
use skua_core::types::{InternalDate, SystemFlags};

use super::{Folder, Message, Source};

/// Folders of a tree hold at most this many messages each (the store's own bound).
const MESSAGES_MAX: usize = skua_core::limits::MESSAGES_PER_MAILBOX_MAX as usize;

/// Reads the tree at `root`.
pub(crate) fn read(root: &Path) -> anyhow::Result<Source> {
    if !root.join("cur").is_dir() && !root.join("new").is_dir() {
        bail!("{} is not a Maildir (no cur/ or new/)", root.display());
    }
    let mut source = Source::default();
    source.folders.push(read_folder(root, "INBOX".to_owned())?);
    let mut entries: Vec<_> = fs::read_dir(root)
        .with_context(|| format!("reading {}", root.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|n| n.strip_prefix('.')) else { continue };
        if name.is_empty() || name == "." || !entry.path().join("cur").is_dir() {
            continue;
        }
        source.folders.push(read_folder(&entry.path(), folder_name(name))?);
    }
    Ok(source)
}

/// `Work.2026` → `Work/2026`, modified UTF-7 decoded (kept as written when it is not valid).
fn folder_name(maildir: &str) -> String {
    let slashed = maildir.replace('.', "/");
    skua_protocols::imap::utf7::decode(slashed.as_bytes()).unwrap_or(slashed)
}

fn read_folder(dir: &Path, name: String) -> anyhow::Result<Folder> {
    let uids = read_uidlist(dir)?;
    let keywords = read_keywords(dir)?;
    let mut messages = Vec::new();
    for sub in ["cur", "new"] {
        let path = dir.join(sub);
        let Ok(listing) = fs::read_dir(&path) else { continue };
        let mut files: Vec<_> = listing.collect::<Result<_, _>>()?;
        files.sort_by_key(fs::DirEntry::file_name);
        for file in files {
            let file_name = file.file_name().to_string_lossy().into_owned();
            if file_name.starts_with('.') || !file.file_type()?.is_file() {
                continue;
            }
            if messages.len() >= MESSAGES_MAX {
                bail!("{} holds more than {MESSAGES_MAX} messages", dir.display());
            }
            let bytes = fs::read(file.path())
                .with_context(|| format!("reading {}", file.path().display()))?;
            if bytes.is_empty() {
                continue;
            }
            let (base, info) = match file_name.split_once(':') {
                Some((base, info)) => (base, info),
                None => (file_name.as_str(), ""),
            };
            let (system, names) = if sub == "new" {
                (SystemFlags::default(), Vec::new())
            } else {
                flags(info, &keywords)
            };
            let modified = file.metadata()?.modified().ok();
            let unix_seconds = modified
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            messages.push(Message {
                bytes,
                system,
                keywords: names,
                date: unix_seconds
                    .map(|unix_seconds| InternalDate { unix_seconds, zone_minutes: 0 }),
                uid: uids.get(base).copied(),
            });
        }
    }
    Ok(Folder { name, messages })
}

/// The flags of a file name's `2,` info part and the keyword names its letters stand for.
fn flags(info: &str, keywords: &HashMap<char, String>) -> (SystemFlags, Vec<String>) {
    let Some(letters) = info.strip_prefix("2,") else {
        return (SystemFlags::default(), Vec::new());
    };
    let mut system = 0u16;
    let mut names = Vec::new();
    for letter in letters.chars() {
        match letter {
            'D' => system |= SystemFlags::DRAFT,
            'F' => system |= SystemFlags::FLAGGED,
            'P' => names.push("$Forwarded".to_owned()),
            'R' => system |= SystemFlags::ANSWERED,
            'S' => system |= SystemFlags::SEEN,
            'T' => system |= SystemFlags::DELETED,
            'a'..='z' => names.extend(keywords.get(&letter).cloned()),
            _ => {}
        }
    }
    names.sort();
    names.dedup();
    (SystemFlags(system), names)
}

/// `dovecot-uidlist`: base file name → UID. Version 1: `1 validity next` then `uid file`;
/// version 3: `3 V.. N.. G..` then `uid [fields] :file`. A folder without one has no UIDs.
fn read_uidlist(dir: &Path) -> anyhow::Result<HashMap<String, u32>> {
    let path = dir.join("dovecot-uidlist");
    let Ok(text) = fs::read_to_string(&path) else { return Ok(HashMap::new()) };
    let mut lines = text.lines();
    let version = lines.next().and_then(|header| header.split(' ').next()).unwrap_or("");
    let mut uids = HashMap::new();
    for line in lines {
        let Some((uid, rest)) = line.split_once(' ') else { continue };
        let Ok(uid) = uid.parse::<u32>() else { continue };
        let file = match version {
            "1" => Some(rest),
            "3" => rest.split_once(':').map(|(_, file)| file),
            _ => bail!("{}: unknown dovecot-uidlist version {version:?}", path.display()),
        };
        if let Some(file) = file {
            let base = file.split_once(':').map_or(file, |(base, _)| base);
            uids.insert(base.to_owned(), uid);
        }
    }
    Ok(uids)
}

/// `dovecot-keywords`: `index name` per line; index 0 is letter `a`.
fn read_keywords(dir: &Path) -> anyhow::Result<HashMap<char, String>> {
    let Ok(text) = fs::read_to_string(dir.join("dovecot-keywords")) else {
        return Ok(HashMap::new());
    };
    let mut keywords = HashMap::new();
    for line in text.lines() {
        let Some((index, name)) = line.split_once(' ') else { continue };
        let Ok(index) = index.parse::<u8>() else { continue };
        if index < 26 && !name.is_empty() {
            keywords.insert(char::from(b'a' + index), name.to_owned());
        }
    }
    Ok(keywords)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_flags_and_keywords() {
        let keywords = HashMap::from([('a', "$Label1".to_owned()), ('c', "Work".to_owned())]);
        let (system, names) = flags("2,FRSac", &keywords);
        let expected = SystemFlags::FLAGGED | SystemFlags::ANSWERED | SystemFlags::SEEN;
        assert_eq!(system.0, expected);
        assert_eq!(names, ["$Label1", "Work"]);
        assert_eq!(flags("2,PTb", &keywords).1, ["$Forwarded"], "b: no such keyword");
        assert_eq!(flags("1,whatever", &keywords).0.0, 0);
    }

    #[test]
    fn folder_names() {
        assert_eq!(folder_name("Work.2026"), "Work/2026");
        assert_eq!(folder_name("Entw&APw-rfe"), "Entwürfe");
    }
}

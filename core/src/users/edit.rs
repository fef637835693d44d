//! Edits of the passwd-file by the administration tools (`skua user add|passwd|del|list`).
//!
//! Every edit rewrites the whole file atomically: the new contents go to a temporary file in
//! the same directory, which is fsynced, renamed over the old file, and then the directory is
//! fsynced; a crash leaves either the old file or the new one, never a mix. Comments, blank
//! lines, lines we do not understand and Dovecot's extra fields are kept byte for byte. Edits
//! are serialized between processes by an exclusive lock on `<file>.lock` beside the file, so
//! two tools running at once do not lose each other's change. A running server does not see
//! an edit until it reloads the file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::UsersError;
use super::file::{Line, name_key, parse_line, strip_line_ending, validate_name};
use super::read_bounded;
use super::scheme::Credential;

/// Adds a user with an already hashed password (`{SCHEME}hash`, e.g. from
/// [`hash_password`](super::hash_password)). Creates the file if missing.
///
/// # Errors
/// [`UsersError::InvalidName`], [`UsersError::InvalidHash`], [`UsersError::UserExists`] (names
/// compare ASCII case-insensitively), or an I/O error.
pub fn add_user(path: &Path, name: &str, password_hash: &str) -> Result<(), UsersError> {
    validate_name(name).map_err(|reason| UsersError::InvalidName { name: name.into(), reason })?;
    validate_hash(password_hash)?;
    edit(path, |contents| {
        if users(contents).any(|(_, existing, _)| name_key(existing) == name_key(name)) {
            return Err(UsersError::UserExists(name.into()));
        }
        let mut output = contents.to_vec();
        if !output.is_empty() && !output.ends_with(b"\n") {
            output.push(b'\n');
        }
        output.extend_from_slice(format!("{name}:{password_hash}\n").as_bytes());
        Ok(output)
    })
}

/// Replaces the password of `name` (every line of that name, should there be several), keeping
/// the line's other fields.
///
/// # Errors
/// [`UsersError::InvalidHash`], [`UsersError::NoSuchUser`], or an I/O error.
pub fn set_password(path: &Path, name: &str, password_hash: &str) -> Result<(), UsersError> {
    validate_hash(password_hash)?;
    edit_existing(path, name, |raw, file_name, rest_offset| {
        let stripped = strip_line_ending(raw);
        let ending = &raw[stripped.len()..];
        let mut line = format!("{file_name}:{password_hash}").into_bytes();
        line.extend_from_slice(&stripped[rest_offset..]);
        line.extend_from_slice(ending);
        Some(line)
    })
}

/// Removes `name` (every line of that name).
///
/// # Errors
/// [`UsersError::NoSuchUser`], or an I/O error.
pub fn delete_user(path: &Path, name: &str) -> Result<(), UsersError> {
    edit_existing(path, name, |_, _, _| None)
}

/// The user names in the file, in file order, spelled as in the file. A missing file has none.
///
/// # Errors
/// An I/O error, or [`UsersError::FileTooLarge`].
pub fn list_users(path: &Path) -> Result<Vec<String>, UsersError> {
    let contents = read_or_empty(path)?;
    Ok(users(&contents).map(|(_, name, _)| name.to_owned()).collect())
}

/// A hash we would accept on login: storable on one line and in a form we can verify.
fn validate_hash(password_hash: &str) -> Result<(), UsersError> {
    if password_hash.chars().any(|c| c == ':' || c.is_control()) {
        return Err(UsersError::InvalidHash("contains ':' or a control character"));
    }
    if password_hash.is_empty() {
        return Err(UsersError::InvalidHash("empty"));
    }
    match Credential::parse(password_hash) {
        Credential::Unusable(_) => Err(UsersError::InvalidHash("not a {SCHEME}hash we can verify")),
        _ => Ok(()),
    }
}

/// The user lines of `contents`: (raw line with ending, name, offset of the extra fields).
fn users(contents: &[u8]) -> impl Iterator<Item = (&[u8], &str, usize)> {
    contents.split_inclusive(|&b| b == b'\n').filter_map(|raw| {
        match parse_line(strip_line_ending(raw)) {
            Line::User { name, rest_offset, .. } => Some((raw, name, rest_offset)),
            Line::Blank | Line::Comment | Line::Invalid(_) => None,
        }
    })
}

/// Rewrites each line of user `name` with `replace(raw line, name as in file, rest offset)`:
/// `Some(line)` replaces it, `None` drops it.
fn edit_existing(
    path: &Path,
    name: &str,
    replace: impl Fn(&[u8], &str, usize) -> Option<Vec<u8>>,
) -> Result<(), UsersError> {
    let key = name_key(name);
    edit(path, |contents| {
        let mut output = Vec::with_capacity(contents.len() + 128);
        let mut found = false;
        for raw in contents.split_inclusive(|&b| b == b'\n') {
            match parse_line(strip_line_ending(raw)) {
                Line::User { name: file_name, rest_offset, .. } if name_key(file_name) == key => {
                    found = true;
                    if let Some(line) = replace(raw, file_name, rest_offset) {
                        output.extend_from_slice(&line);
                    }
                }
                _ => output.extend_from_slice(raw),
            }
        }
        if found { Ok(output) } else { Err(UsersError::NoSuchUser(name.into())) }
    })
}

/// Locks, reads, transforms and atomically replaces the file.
fn edit(
    path: &Path,
    transform: impl FnOnce(&[u8]) -> Result<Vec<u8>, UsersError>,
) -> Result<(), UsersError> {
    let lock_path = sibling(path, ".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| UsersError::io(&lock_path, e))?;
    lock.lock().map_err(|e| UsersError::io(&lock_path, e))?;
    let contents = read_or_empty(path)?;
    let output = transform(&contents)?;
    replace_file(path, &output)
    // The lock is released when `lock` is dropped, after the rename is durable.
}

fn read_or_empty(path: &Path) -> Result<Vec<u8>, UsersError> {
    match read_bounded(path) {
        Err(UsersError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Ok(Vec::new())
        }
        other => other,
    }
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Write temp, fsync, rename over, fsync the directory. The new file keeps the old one's
/// permission bits, or gets 0600 (hashes are secrets) when there was none.
pub(crate) fn replace_file(path: &Path, contents: &[u8]) -> Result<(), UsersError> {
    let mode = fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o7777);
    let temp_path =
        sibling(path, &format!(".tmp.{}.{:08x}", std::process::id(), rand::random::<u32>()));
    let result = write_synced(&temp_path, contents, mode)
        .and_then(|()| fs::rename(&temp_path, path).map_err(|e| UsersError::io(path, e)));
    if result.is_err() {
        // Best effort: the temporary file is garbage now; the old file is untouched.
        let _ = fs::remove_file(&temp_path);
        return result;
    }
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory).and_then(|d| d.sync_all()).map_err(|e| UsersError::io(directory, e))
}

fn write_synced(path: &Path, contents: &[u8], mode: u32) -> Result<(), UsersError> {
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(path)
        .map_err(|e| UsersError::io(path, e))?;
    // `mode` at creation is filtered by the umask; set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode)).map_err(|e| UsersError::io(path, e))?;
    file.write_all(contents).map_err(|e| UsersError::io(path, e))?;
    file.sync_all().map_err(|e| UsersError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_names() {
        assert_eq!(
            sibling(Path::new("/etc/skua/passwd"), ".lock"),
            Path::new("/etc/skua/passwd.lock")
        );
        assert_eq!(sibling(Path::new("passwd"), ".x"), Path::new("passwd.x"));
    }

    #[test]
    fn hashes_are_validated() {
        assert!(validate_hash("{PLAIN}x").is_ok());
        assert!(validate_hash("").is_err());
        assert!(validate_hash("{PLAIN}a:b").is_err());
        assert!(validate_hash("{PLAIN}a\nb").is_err());
        assert!(validate_hash("{MD5}abc").is_err());
        assert!(validate_hash("plaintext").is_err());
    }

    #[test]
    fn edits_keep_crlf_and_extra_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        fs::write(&path, b"# c\r\nalice:{PLAIN}a:1:2::/h::x=y\r\nbob:{PLAIN}b").unwrap();
        set_password(&path, "ALICE", "{PLAIN}new").unwrap();
        add_user(&path, "carol", "{PLAIN}c").unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            b"# c\r\nalice:{PLAIN}new:1:2::/h::x=y\r\nbob:{PLAIN}b\ncarol:{PLAIN}c\n"
        );
        delete_user(&path, "bob").unwrap();
        assert_eq!(list_users(&path).unwrap(), ["alice", "carol"]);
    }

    #[test]
    fn permissions_are_kept_or_private() {
        let dir = tempfile::tempdir().unwrap();
        let mode_of = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        let fresh = dir.path().join("fresh");
        add_user(&fresh, "alice", "{PLAIN}a").unwrap();
        assert_eq!(mode_of(&fresh), 0o600);
        let shared = dir.path().join("shared");
        fs::write(&shared, b"").unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o640)).unwrap();
        add_user(&shared, "alice", "{PLAIN}a").unwrap();
        assert_eq!(mode_of(&shared), 0o640);
    }
}

//! The server's long-lived secret for SASL: unknown SCRAM users' fake salts are derived from
//! it ([`ScramKeys::fake`](super::scram::ScramKeys::fake)), so it must survive restarts (a
//! fake salt that changes at a restart, while real salts do not, tells the user is fake).
//!
//! It lives in a file of exactly [`SERVER_SECRET_BYTES`] random bytes, mode 0600, made on
//! first start: written to a temporary file in the same directory, fsynced, linked into place
//! without replacing anything (so two servers starting at once agree on one secret), and the
//! directory fsynced.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::error::UsersError;
use super::secret::Secret;

/// Length of the secret.
pub const SERVER_SECRET_BYTES: usize = 32;

/// Reads the secret at `path`, making it first if the file does not exist.
///
/// # Errors
/// [`UsersError::Io`] when the file or its directory cannot be read or written, and
/// [`UsersError::InvalidSecretFile`] when the file exists but is not
/// [`SERVER_SECRET_BYTES`] bytes long (refused rather than replaced: it may be another file).
pub fn load_or_create_server_secret(path: &Path) -> Result<Secret<Vec<u8>>, UsersError> {
    match read_secret(path) {
        Err(UsersError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            create_secret(path)?;
            read_secret(path)
        }
        other => other,
    }
}

fn read_secret(path: &Path) -> Result<Secret<Vec<u8>>, UsersError> {
    let file = File::open(path).map_err(|e| UsersError::io(path, e))?;
    let mut reader = file.take(SERVER_SECRET_BYTES as u64 + 1);
    // One byte more than a secret: a longer file is seen as such without reading it all.
    let mut secret = Secret::new(vec![0u8; SERVER_SECRET_BYTES + 1]);
    let buffer = secret.expose_mut();
    let mut length = 0;
    while length < buffer.len() {
        let read = reader.read(&mut buffer[length..]).map_err(|e| UsersError::io(path, e))?;
        if read == 0 {
            break;
        }
        length += read;
    }
    if length != SERVER_SECRET_BYTES {
        return Err(UsersError::InvalidSecretFile {
            path: path.into(),
            expected_bytes: SERVER_SECRET_BYTES,
        });
    }
    buffer.truncate(SERVER_SECRET_BYTES);
    Ok(secret)
}

fn create_secret(path: &Path) -> Result<(), UsersError> {
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temporary = directory.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("secret"),
        std::process::id()
    ));
    let secret = Secret::new(rand::random::<[u8; SERVER_SECRET_BYTES]>().to_vec());
    let written = (|| {
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
        file.write_all(secret.expose())?;
        file.sync_all()
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary);
        return Err(UsersError::io(&temporary, error));
    }
    // A hard link never replaces: if another process made the file meanwhile, keep theirs.
    let linked = fs::hard_link(&temporary, path);
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(error) => return Err(UsersError::io(path, error)),
    }
    File::open(directory).and_then(|d| d.sync_all()).map_err(|e| UsersError::io(directory, e))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn made_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sasl-secret");
        let first = load_or_create_server_secret(&path).unwrap();
        assert_eq!(first.expose().len(), SERVER_SECRET_BYTES);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let second = load_or_create_server_secret(&path).unwrap();
        assert_eq!(first, second);
        let names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["sasl-secret"], "no temporary file left");
    }

    #[test]
    fn a_file_of_another_length_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sasl-secret");
        for contents in [&b""[..], &[1u8; SERVER_SECRET_BYTES - 1], &[1u8; SERVER_SECRET_BYTES + 1]]
        {
            fs::write(&path, contents).unwrap();
            let error = load_or_create_server_secret(&path).unwrap_err();
            assert!(matches!(error, UsersError::InvalidSecretFile { .. }), "{error}");
            assert_eq!(fs::read(&path).unwrap(), contents);
        }
    }

    #[test]
    fn a_missing_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("sasl-secret");
        assert!(matches!(load_or_create_server_secret(&path), Err(UsersError::Io { .. })));
    }
}

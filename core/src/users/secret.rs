//! [`Secret`]: a credential (a password, a SASL response holding one) that never shows up in
//! logs or panics by accident.
//!
//! Command types derive `Debug` for tests and tracing; a password field inside one would be
//! printed with it. `Secret`'s `Debug` prints `<redacted>`, it has no `Display`, and the value
//! is reached only through [`Secret::expose`], so every use of the plain text is greppable.
//! On drop the buffer is overwritten with zeros (best effort without `unsafe` or a crate: a
//! copy the allocator made while the value grew is not reached).

use std::fmt;

/// A value whose bytes are wiped when it is dropped.
pub trait Wipe {
    /// Overwrites the value's bytes with zeros and empties it.
    fn wipe(&mut self);
}

impl Wipe for Vec<u8> {
    fn wipe(&mut self) {
        self.fill(0);
        // Keep the writes: the buffer is freed right after, which an optimiser may see.
        std::hint::black_box(&mut *self);
        self.clear();
    }
}

impl Wipe for String {
    fn wipe(&mut self) {
        // `into_bytes` keeps the allocation, so the zeros land on the password's own bytes.
        let mut bytes = std::mem::take(self).into_bytes();
        bytes.wipe();
    }
}

/// A credential: `Debug` redacts it, nothing displays it, and it is wiped on drop.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T: Wipe>(T);

impl<T: Wipe> Secret<T> {
    /// Wraps a value.
    #[must_use]
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The plain value. Use it only where the credential is checked or must be passed on.
    #[must_use]
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The plain value, to fill it in place (so no unwrapped copy exists).
    pub(crate) fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Wipe + Default> Secret<T> {
    /// Takes the plain value out (for an interface that has no `Secret` yet); the caller is
    /// now responsible for it.
    #[must_use]
    pub fn into_exposed(mut self) -> T {
        std::mem::take(&mut self.0)
    }
}

impl<T: Wipe> From<T> for Secret<T> {
    fn from(value: T) -> Secret<T> {
        Secret(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Secret<String> {
        Secret(value.to_owned())
    }
}

impl<T: Wipe> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.wipe();
    }
}

impl<T: Wipe> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(<redacted>)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn wiping_zeroes_and_empties() {
        let mut bytes = b"hunter2".to_vec();
        bytes.wipe();
        assert!(bytes.is_empty());
        let mut text = "hunter2".to_owned();
        text.wipe();
        assert!(text.is_empty());
        let secret = Secret::new("pw".to_owned());
        assert_eq!(secret.clone().into_exposed(), "pw");
        assert_eq!(secret, Secret::from("pw".to_owned()));
    }
}

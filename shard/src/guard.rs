//! The panic guard: a bug in one session must not take down the shard.
//!
//! Every session step, delivery, password check and flush runs inside [`guarded`]. A panic is
//! caught and returned as its message; the caller ends that connection (`* BYE [SERVERBUG]`,
//! LMTP `421`), counts and logs it, and poisons the user's store if the step was using it.
//! `AssertUnwindSafe` is sound here because nothing the panicking closure touched is used
//! again unless it is known to be consistent: the session is dropped, the store is poisoned.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `step`, turning a panic into `Err(message)`.
///
/// # Errors
/// The panic's message when `step` panicked.
pub fn guarded<T>(step: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(step)).map_err(|payload| panic_message(&*payload))
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
#[must_use]
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_errors_with_their_message() {
        assert_eq!(guarded(|| 7), Ok(7));
        assert_eq!(guarded(|| -> u8 { panic!("literal") }), Err("literal".to_owned()));
        let n = 3;
        assert_eq!(guarded(|| -> u8 { panic!("formatted {n}") }), Err("formatted 3".to_owned()));
        let mut state = vec![1];
        let result = guarded(|| {
            state.push(2);
            panic!("midway")
        });
        assert!(result.is_err());
        assert_eq!(state, [1, 2], "the caller decides what to do with touched state");
    }
}

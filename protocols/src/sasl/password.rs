//! PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login) and EXTERNAL (RFC 4422 appendix A):
//! the mechanisms whose one piece of client data the host checks itself.
//!
//! ```text
//! PLAIN:    message  = [authzid] NUL authcid NUL passwd      ; UTF-8, no NUL inside
//! LOGIN:    S: "Username:"  C: authcid   S: "Password:"  C: passwd
//! EXTERNAL: message  = [authzid]                             ; empty: the certificate's user
//! ```

use skua_core::users::Secret;

use super::limits::IDENTITY_BYTES_MAX;
use super::types::{FailureReason, HostAnswer, Step, Success};

/// LOGIN's prompts (the draft's, which clients ignore but some log).
const USERNAME_PROMPT: &[u8] = b"Username:";
const PASSWORD_PROMPT: &[u8] = b"Password:";

/// Who the host is asked about, kept until its verdict.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) authcid: String,
    pub(super) authzid: Option<String>,
}

impl Pending {
    /// Turns the host's verdict into the final step. `authcid` empty means "the user the host
    /// names" (EXTERNAL, tokens).
    pub(super) fn verdict(self, answer: HostAnswer) -> Step {
        match answer {
            HostAnswer::Accepted { user } => {
                let authcid = if self.authcid.is_empty() { user.clone() } else { self.authcid };
                Step::Success(Success { user, authcid, authzid: self.authzid, final_data: None })
            }
            HostAnswer::Refused(reason) => Step::fail(FailureReason::Refused(reason)),
            HostAnswer::NotAuthorized(reason) => Step::fail(FailureReason::NotAuthorized(reason)),
            HostAnswer::Unavailable => Step::fail(FailureReason::Unavailable),
            HostAnswer::ScramKeys(_) => out_of_order(),
        }
    }
}

/// The step for a call the host should not have made (its bug).
pub(super) fn out_of_order() -> Step {
    debug_assert!(false, "SASL exchange driven out of order");
    Step::fail(FailureReason::OutOfOrder)
}

/// A UTF-8 identity of at most [`IDENTITY_BYTES_MAX`] bytes without NUL.
fn identity(raw: &[u8], what: &'static str) -> Result<String, Step> {
    if raw.len() > IDENTITY_BYTES_MAX || raw.contains(&0) {
        return Err(Step::malformed(what));
    }
    String::from_utf8(raw.to_vec()).map_err(|_| Step::malformed(what))
}

/// PLAIN's state.
#[derive(Debug)]
pub(super) enum Plain {
    AwaitMessage,
    AwaitVerdict(Pending),
}

impl Plain {
    pub(super) fn begin(&mut self, initial: Option<&[u8]>) -> Step {
        match initial {
            None => Step::Challenge(Vec::new()),
            Some(message) => self.respond(message),
        }
    }

    pub(super) fn respond(&mut self, message: &[u8]) -> Step {
        if !matches!(self, Plain::AwaitMessage) {
            return out_of_order();
        }
        let mut fields = message.split(|&b| b == 0);
        let (Some(authzid), Some(authcid), Some(password), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Step::malformed("PLAIN message");
        };
        let (authzid, authcid) =
            match (identity(authzid, "PLAIN authzid"), identity(authcid, "PLAIN authcid")) {
                (Ok(authzid), Ok(authcid)) => (authzid, authcid),
                (Err(step), _) | (_, Err(step)) => return step,
            };
        if authcid.is_empty() {
            return Step::malformed("PLAIN message (empty authcid)");
        }
        let Ok(password) = std::str::from_utf8(password) else {
            return Step::malformed("PLAIN password (not UTF-8)");
        };
        if password.is_empty() {
            return Step::malformed("PLAIN message (empty password)");
        }
        // The only copy the exchange makes, straight into a Secret.
        let password = Secret::new(password.to_owned());
        let authzid = Some(authzid).filter(|z| !z.is_empty());
        *self = Plain::AwaitVerdict(Pending { authcid: authcid.clone(), authzid: authzid.clone() });
        Step::VerifyPassword { authcid, authzid, password }
    }

    pub(super) fn answer(&mut self, answer: HostAnswer) -> Step {
        match std::mem::replace(self, Plain::AwaitMessage) {
            Plain::AwaitVerdict(pending) => pending.verdict(answer),
            Plain::AwaitMessage => out_of_order(),
        }
    }
}

/// LOGIN's state.
#[derive(Debug)]
pub(super) enum Login {
    /// Waiting for the user name.
    User,
    /// Waiting for the password of this user.
    Password(String),
    /// Waiting for the host's verdict.
    Verdict(Pending),
}

impl Login {
    /// An initial response is the user name (what clients sending one mean by it).
    pub(super) fn begin(&mut self, initial: Option<&[u8]>) -> Step {
        match initial {
            None => Step::Challenge(USERNAME_PROMPT.to_vec()),
            Some(user) => self.respond(user),
        }
    }

    pub(super) fn respond(&mut self, data: &[u8]) -> Step {
        match std::mem::replace(self, Login::User) {
            Login::User => match identity(data, "LOGIN user name") {
                Ok(user) if !user.is_empty() => {
                    *self = Login::Password(user);
                    Step::Challenge(PASSWORD_PROMPT.to_vec())
                }
                Ok(_) => Step::malformed("LOGIN user name (empty)"),
                Err(step) => step,
            },
            Login::Password(authcid) => {
                if data.is_empty() || data.contains(&0) {
                    return Step::malformed("LOGIN password");
                }
                let Ok(password) = std::str::from_utf8(data) else {
                    return Step::malformed("LOGIN password (not UTF-8)");
                };
                let password = Secret::new(password.to_owned());
                *self = Login::Verdict(Pending { authcid: authcid.clone(), authzid: None });
                Step::VerifyPassword { authcid, authzid: None, password }
            }
            Login::Verdict(_) => out_of_order(),
        }
    }

    pub(super) fn answer(&mut self, answer: HostAnswer) -> Step {
        match std::mem::replace(self, Login::User) {
            Login::Verdict(pending) => pending.verdict(answer),
            _ => out_of_order(),
        }
    }
}

/// EXTERNAL's state.
#[derive(Debug)]
pub(super) enum External {
    AwaitMessage,
    AwaitVerdict(Pending),
}

impl External {
    pub(super) fn begin(&mut self, initial: Option<&[u8]>) -> Step {
        match initial {
            None => Step::Challenge(Vec::new()),
            Some(message) => self.respond(message),
        }
    }

    pub(super) fn respond(&mut self, message: &[u8]) -> Step {
        if !matches!(self, External::AwaitMessage) {
            return out_of_order();
        }
        let authzid = match identity(message, "EXTERNAL authzid") {
            Ok(authzid) => Some(authzid).filter(|z| !z.is_empty()),
            Err(step) => return step,
        };
        *self =
            External::AwaitVerdict(Pending { authcid: String::new(), authzid: authzid.clone() });
        Step::External { authzid }
    }

    pub(super) fn answer(&mut self, answer: HostAnswer) -> Step {
        match std::mem::replace(self, External::AwaitMessage) {
            External::AwaitVerdict(pending) => pending.verdict(answer),
            External::AwaitMessage => out_of_order(),
        }
    }
}

//! Who a login is for and who proved it: ordinary logins, master users, and authorization ids.
//!
//! Master users live in a passwd-file of their own (same format, named by the host's config)
//! and may log in as any user, for migration tools and support staff. A master login names
//! its target in one of two ways:
//!
//! - SASL authorization id: PLAIN `target NUL master NUL password`, SCRAM `a=target`;
//! - the master separator in the login name: `target*master` in LOGIN, the PLAIN authcid or the
//!   SCRAM `n=` (Dovecot's `auth_master_user_separator`).
//!
//! With no master file configured, `*` is an ordinary name character and an authorization id
//! other than the authenticating user is refused. A master user logs in *as a target*, never
//! as itself: the master file grants no mailbox. The host logs every login whose
//! [`LoginIdentity::master`] is set.
//!
//! [`Logins::check_password`] runs exactly one password verification per call, whatever the
//! outcome (unknown names are checked against the dummy hash), so its timing tells no more than
//! [`UserDb::check_login`] does. The reasons in [`LoginRefusal`] are for logs; a client should
//! get the same answer for each.

use super::scram::{ScramAlgorithm, ScramKeys};
use super::secret::Secret;
use super::{UserDb, name_key};

/// The separator between target and master in a login name: `target*master`.
pub const MASTER_SEPARATOR: char = '*';

/// A login that succeeded: who it is for and who proved it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginIdentity {
    /// The user whose mail the session opens: canonical name from the users file.
    pub user: String,
    /// Who proved the credentials: the user itself, or the master user (canonical name from
    /// the master file).
    pub authenticated_as: String,
    /// True when a master user logged in as `user`.
    pub master: bool,
}

/// Why a login was refused (for logs; never holds the password).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    /// Unknown user, wrong password, or a user who cannot log in.
    #[error("bad credentials")]
    BadCredentials,
    /// Right credentials, but for someone who may not act as the authorization id given.
    #[error("not authorized to act as the requested user")]
    NotAuthorized,
    /// A master user's right credentials, for a target that is not a user.
    #[error("master login for an unknown user")]
    NoSuchTarget,
    /// Both an authorization id and the master separator: ambiguous, refused.
    #[error("both an authorization id and a master separator")]
    Ambiguous,
}

/// The users and, when configured, the master users: everything a login is resolved against.
#[derive(Clone, Copy, Debug)]
pub struct Logins<'a> {
    /// The users file.
    pub users: &'a UserDb,
    /// The master users file, if the config names one.
    pub masters: Option<&'a UserDb>,
}

/// Whose credentials a login presents, and for whom.
#[derive(Debug, PartialEq, Eq)]
enum Plan<'n> {
    /// An ordinary login: the user named, for itself.
    User(&'n str),
    /// A master user named `master`, for `target`.
    Master { master: &'n str, target: &'n str },
}

impl<'a> Logins<'a> {
    /// A resolver without master users.
    #[must_use]
    pub fn new(users: &'a UserDb) -> Logins<'a> {
        Logins { users, masters: None }
    }

    /// Works out whose credentials `authcid` presents and for whom (see the module docs).
    fn plan<'n>(
        &self,
        authcid: &'n str,
        authzid: Option<&'n str>,
    ) -> Result<Plan<'n>, LoginRefusal> {
        let authzid = authzid.filter(|z| !z.is_empty() && name_key(z) != name_key(authcid));
        if self.masters.is_none() {
            return match authzid {
                None => Ok(Plan::User(authcid)),
                Some(_) => Err(LoginRefusal::NotAuthorized),
            };
        }
        match (authzid, authcid.rsplit_once(MASTER_SEPARATOR)) {
            (Some(_), Some(_)) => Err(LoginRefusal::Ambiguous),
            (Some(target), None) => Ok(Plan::Master { master: authcid, target }),
            (None, Some((target, master))) if !target.is_empty() && !master.is_empty() => {
                Ok(Plan::Master { master, target })
            }
            (None, Some(_)) => Err(LoginRefusal::BadCredentials),
            (None, None) => Ok(Plan::User(authcid)),
        }
    }

    /// Checks a password login (LOGIN, PLAIN, AUTHENTICATE LOGIN): `authcid` is the login name
    /// (maybe `target*master`), `authzid` PLAIN's authorization id (`None` or empty: none).
    ///
    /// Runs exactly one password verification, also when the answer is a refusal.
    /// CPU-heavy by design: never call it on a shard's reactor thread.
    ///
    /// # Errors
    /// The reason the login is refused (for the log).
    pub fn check_password(
        &self,
        authcid: &str,
        authzid: Option<&str>,
        password: &Secret<String>,
    ) -> Result<LoginIdentity, LoginRefusal> {
        let plan = match self.plan(authcid, authzid) {
            Ok(plan) => plan,
            Err(refusal) => {
                // Same cost as any other failure: verify against the dummy hash.
                let _ = self.users.check_login("", password);
                return Err(refusal);
            }
        };
        match plan {
            Plan::User(name) => match self.users.check_login(name, password) {
                Some(entry) => Ok(identity(entry.name(), entry.name(), false)),
                None => Err(LoginRefusal::BadCredentials),
            },
            Plan::Master { master, target } => {
                let masters = self.masters.expect("a master plan needs the master file");
                let master =
                    masters.check_login(master, password).ok_or(LoginRefusal::BadCredentials)?;
                let target = self.users.lookup(target).ok_or(LoginRefusal::NoSuchTarget)?;
                Ok(identity(target.name(), master.name(), true))
            }
        }
    }

    /// The SCRAM keys a SCRAM exchange for `authcid` (its `n=`, maybe `target*master`) and
    /// `authzid` (its `a=`) is checked against, and the identity it yields once the proof is
    /// right. `None` when there are none: unknown user or master, no SCRAM keys of that hash,
    /// a target that is not a user, or an authorization id the user may not use. The caller
    /// then runs the exchange on [`ScramKeys::fake`] keys, so that the client cannot tell.
    /// Cheap (lookups only).
    #[must_use]
    pub fn scram_credentials(
        &self,
        authcid: &str,
        authzid: Option<&str>,
        algorithm: ScramAlgorithm,
    ) -> Option<(ScramKeys, LoginIdentity)> {
        match self.plan(authcid, authzid).ok()? {
            Plan::User(name) => {
                let entry = self.users.lookup(name)?;
                let keys = entry.scram_keys(algorithm)?.clone();
                Some((keys, identity(entry.name(), entry.name(), false)))
            }
            Plan::Master { master, target } => {
                let master = self.masters?.lookup(master)?;
                let keys = master.scram_keys(algorithm)?.clone();
                let target = self.users.lookup(target)?;
                Some((keys, identity(target.name(), master.name(), true)))
            }
        }
    }

    /// Authorizes a login whose identity was proved some other way (EXTERNAL's certificate,
    /// a token's user claim): `authenticated` must be a user, and `authzid`, if given, that
    /// same user. Master users play no part here.
    ///
    /// # Errors
    /// [`LoginRefusal::BadCredentials`] when `authenticated` is not a user,
    /// [`LoginRefusal::NotAuthorized`] for another authorization id.
    pub fn authorize(
        &self,
        authenticated: &str,
        authzid: Option<&str>,
    ) -> Result<LoginIdentity, LoginRefusal> {
        let entry = self.users.lookup(authenticated).ok_or(LoginRefusal::BadCredentials)?;
        match authzid.filter(|z| !z.is_empty()) {
            Some(z) if name_key(z) != name_key(entry.name()) => Err(LoginRefusal::NotAuthorized),
            _ => Ok(identity(entry.name(), entry.name(), false)),
        }
    }
}

fn identity(user: &str, authenticated_as: &str, master: bool) -> LoginIdentity {
    LoginIdentity { user: user.to_owned(), authenticated_as: authenticated_as.to_owned(), master }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &[u8] = b"alice:{PLAIN}alice-pw\nbob:{PLAIN}bob-pw\nodd*name:{PLAIN}odd-pw\n";
    const MASTERS: &[u8] = b"Support:{PLAIN}master-pw\nalice:{PLAIN}alice-master-pw\n";

    #[test]
    fn plans() {
        let users = UserDb::parse(USERS, "users");
        let masters = UserDb::parse(MASTERS, "masters");
        let plain = Logins::new(&users);
        let with = Logins { users: &users, masters: Some(&masters) };
        assert_eq!(plain.plan("a*b", None), Ok(Plan::User("a*b")));
        assert_eq!(plain.plan("a", Some("A")), Ok(Plan::User("a")));
        assert_eq!(plain.plan("a", Some("")), Ok(Plan::User("a")));
        assert_eq!(plain.plan("a", Some("b")), Err(LoginRefusal::NotAuthorized));
        assert_eq!(with.plan("a*b", None), Ok(Plan::Master { master: "b", target: "a" }));
        assert_eq!(with.plan("a*b*c", None), Ok(Plan::Master { master: "c", target: "a*b" }));
        assert_eq!(with.plan("b", Some("a")), Ok(Plan::Master { master: "b", target: "a" }));
        assert_eq!(with.plan("a*b", Some("c")), Err(LoginRefusal::Ambiguous));
        assert_eq!(with.plan("*b", None), Err(LoginRefusal::BadCredentials));
        assert_eq!(with.plan("a*", None), Err(LoginRefusal::BadCredentials));
    }
}

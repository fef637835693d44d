//! `skua mboxlist dump|undump` (Cyrus's `ctl_mboxlist -d / -u`): every mailbox of a store as
//! one [`MailboxLine`] each, and the reverse: create the mailboxes a dump lists that do not
//! exist, with their SPECIAL-USE attributes, ACL and subscription.
//!
//! Undump leaves every existing mailbox alone (no attribute, ACL or subscription of one is
//! touched) and makes no messages: ids, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and message counts
//! in a dump are for reading, a new mailbox gets its own. Every line is checked before
//! anything is made, so a bad line changes nothing. A new mailbox's ACL naming another user
//! needs a note in that user's grant index (`grants.rs`) before the ACL is written: the
//! caller notes them first ([`grantees`], [`UserStore::note_grant`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::super::UserStore;
use super::super::special_use::SpecialUse;
use super::AdminError;
use crate::acl::{Identifier, Rights, RightsChange, Who};
use crate::disk::Disk;
use crate::error::MailboxError;

/// One mailbox in a dump: one JSON object per line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxLine {
    /// The owner.
    pub user: String,
    /// The mailbox's canonical name (`INBOX` uppercase, `/` between levels).
    pub mailbox: String,
    /// Its id in the store it was dumped from (ignored by undump).
    #[serde(default)]
    pub id: u32,
    /// UIDVALIDITY (ignored by undump).
    #[serde(default)]
    pub uid_validity: u32,
    /// UIDNEXT (ignored by undump).
    #[serde(default)]
    pub uid_next: u32,
    /// HIGHESTMODSEQ (ignored by undump).
    #[serde(default)]
    pub highest_modseq: u64,
    /// Live messages (ignored by undump).
    #[serde(default)]
    pub messages: u32,
    /// The ACL: identifier (`-name` for a negative entry) to rights (RFC 4314 letters).
    #[serde(default)]
    pub acl: BTreeMap<String, String>,
    /// SPECIAL-USE attributes (`\Sent`, ...).
    #[serde(default)]
    pub special_use: Vec<String>,
    /// Subscribed.
    #[serde(default)]
    pub subscribed: bool,
}

/// What an undump of one user did (or, dry, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndumpReport {
    /// The user.
    pub user: String,
    /// Mailboxes made (in the dump's order), with what the line gave them.
    pub created: Vec<MailboxLine>,
    /// Mailboxes of the dump that existed already, left alone.
    pub existing: Vec<String>,
    /// Nothing was written.
    pub dry_run: bool,
}

/// A line checked: what undump applies.
struct Checked {
    uses: SpecialUse,
    acl: Vec<(Identifier, Rights)>,
}

fn invalid(line: &MailboxLine, what: impl std::fmt::Display) -> AdminError {
    AdminError::Invalid(format!("{} {:?}: {what}", line.user, line.mailbox))
}

fn check_line(line: &MailboxLine) -> Result<Checked, AdminError> {
    let mut uses = SpecialUse::NONE;
    for name in &line.special_use {
        let one = SpecialUse::from_name(name)
            .filter(|one| SpecialUse::ASSIGNABLE.contains(*one))
            .ok_or_else(|| invalid(line, format!("special-use {name} cannot be given")))?;
        uses = uses.union(one);
    }
    let mut acl = Vec::with_capacity(line.acl.len());
    for (identifier, rights) in &line.acl {
        let who = Identifier::parse(identifier).map_err(|e| invalid(line, e))?;
        let rights = Rights::parse(rights).map_err(|e| invalid(line, e))?;
        acl.push((who, rights));
    }
    Ok(Checked { uses, acl })
}

/// The users (lowercased) a dump's ACLs give rights to, each with the owners who give them:
/// the grant-index notes an undump needs first. Owners' own entries, negative entries,
/// `anyone` and `authenticated` need none.
#[must_use]
pub fn grantees(lines: &[MailboxLine]) -> BTreeMap<String, BTreeSet<String>> {
    let mut notes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in lines {
        let owner = line.user.to_ascii_lowercase();
        for (identifier, rights) in &line.acl {
            let Ok(Identifier { who: Who::User(user), negative: false }) =
                Identifier::parse(identifier)
            else {
                continue;
            };
            if user != owner && Rights::parse(rights).is_ok_and(|r| !r.is_empty()) {
                notes.entry(user).or_default().insert(owner.clone());
            }
        }
    }
    notes
}

/// The checks of [`UserStore::mboxlist_undump`] on every line.
fn check_lines(user: &str, lines: &[MailboxLine]) -> Result<Vec<Checked>, AdminError> {
    let mut checked = Vec::with_capacity(lines.len());
    for line in lines {
        if !line.user.eq_ignore_ascii_case(user) {
            return Err(invalid(line, format!("not a mailbox of {user}")));
        }
        checked.push(check_line(line)?);
    }
    Ok(checked)
}

/// A dry undump for a user who has no store yet, without making one: every line would be
/// made but INBOX (a new store has it).
///
/// # Errors
/// As [`UserStore::mboxlist_undump`]'s checks.
pub fn undump_dry_without_store(
    user: &str,
    lines: &[MailboxLine],
) -> Result<UndumpReport, AdminError> {
    check_lines(user, lines)?;
    let mut report =
        UndumpReport { user: user.to_owned(), dry_run: true, ..UndumpReport::default() };
    for line in lines {
        if super::super::names::canonical_inbox(&line.mailbox) == super::super::names::INBOX {
            report.existing.push(line.mailbox.clone());
        } else {
            report.created.push(line.clone());
        }
    }
    Ok(report)
}

impl<D: Disk> UserStore<D> {
    /// `skua mboxlist dump`: every mailbox, sorted by name.
    #[must_use]
    pub fn mboxlist_dump(&self, user: &str) -> Vec<MailboxLine> {
        self.mailboxes()
            .into_iter()
            .map(|info| {
                let acl = self.acl(info.id).map(|acl| {
                    let entries = acl.entries().iter();
                    entries.map(|e| (e.identifier.to_string(), e.rights.to_string())).collect()
                });
                MailboxLine {
                    user: user.to_owned(),
                    mailbox: info.name,
                    id: info.id.0,
                    uid_validity: info.uid_validity.get(),
                    uid_next: info.uid_next.get(),
                    highest_modseq: info.highest_modseq.0,
                    messages: info.messages,
                    acl: acl.unwrap_or_default(),
                    special_use: self.special_use(info.id).names().map(str::to_owned).collect(),
                    subscribed: info.subscribed,
                }
            })
            .collect()
    }

    /// `skua mboxlist undump`: makes the mailboxes of `lines` (all `user`'s) that do not
    /// exist; with `dry_run`, only says which it would make.
    ///
    /// # Errors
    /// [`AdminError::Invalid`]: a line of another user, a special-use that cannot be given,
    /// a bad ACL entry, a bad name, too many mailboxes (nothing is made for a bad line, and
    /// nothing at all when a check before any creation fails); the disk failed.
    pub fn mboxlist_undump(
        &mut self,
        user: &str,
        lines: &[MailboxLine],
        dry_run: bool,
    ) -> Result<UndumpReport, AdminError> {
        let checked = check_lines(user, lines)?;
        let mut report = UndumpReport { user: user.to_owned(), dry_run, ..UndumpReport::default() };
        for (line, checked) in lines.iter().zip(checked) {
            if self.mailbox_id(&line.mailbox).is_some() {
                report.existing.push(line.mailbox.clone());
                continue;
            }
            if !dry_run {
                self.undump_one(line, &checked)?;
            }
            report.created.push(line.clone());
        }
        Ok(report)
    }

    fn undump_one(&mut self, line: &MailboxLine, checked: &Checked) -> Result<(), AdminError> {
        let mailbox_error = |e: MailboxError| match e {
            MailboxError::Storage(e) => AdminError::Storage(e),
            other => invalid(line, other),
        };
        let id = if checked.uses.is_empty() {
            self.create_mailbox(&line.mailbox)
        } else {
            self.create_mailbox_with_use(&line.mailbox, checked.uses)
        }
        .map_err(mailbox_error)?;
        for (identifier, rights) in &checked.acl {
            self.set_acl(id, identifier, RightsChange::Replace(*rights)).map_err(|e| match e {
                super::super::AclError::Storage(e) => AdminError::Storage(e),
                other => invalid(line, other),
            })?;
        }
        if line.subscribed {
            let name = self.mailbox_info(id).map(|info| info.name).unwrap_or_default();
            self.subscribe(&name).map_err(mailbox_error)?;
        }
        Ok(())
    }
}

//! The NOTIFY command's grammar (RFC 5465 §8) and what it parses to.
//!
//! ```text
//! notify           = "NOTIFY" SP (notify-set / notify-none)
//! notify-set       = "SET" [status-indicator] SP event-groups
//! status-indicator = SP "STATUS"
//! notify-none      = "NONE"
//! event-groups     = event-group *(SP event-group)
//! event-group      = "(" filter-mailboxes SP events ")"
//! filter-mailboxes = filter-mailboxes-selected / filter-mailboxes-other
//! filter-mailboxes-selected = "selected" / "selected-delayed"
//! filter-mailboxes-other    = "inboxes" / "personal" / "subscribed" /
//!                             ("subtree" SP one-or-more-mailbox) /
//!                             ("mailboxes" SP one-or-more-mailbox)
//! one-or-more-mailbox = mailbox / many-mailboxes
//! many-mailboxes   = "(" mailbox *(SP mailbox) ")"
//! events           = ("(" event *(SP event) ")") / "NONE"
//! event            = message-event / mailbox-event / user-event / event-ext
//! message-event    = ("MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"]) /
//!                    "MessageExpunge" / "FlagChange" / "AnnotationChange"
//! mailbox-event    = "MailboxName" / "SubscriptionChange" / "MailboxMetadataChange"
//! user-event       = "ServerMetadataChange"
//! event-ext        = atom
//! ```
//!
//! Only the grammar is checked here; the rules on which events go together, and the events
//! this server supports, are the command's (`command/notify.rs`).

use crate::imap::types::FetchAttribute;

use super::ParseErrorKind;
use super::cursor::{Cursor, PResult, fail, syntax};
use super::values::mailbox;

/// Event groups one NOTIFY SET may hold.
const GROUPS_MAX: usize = 32;

/// `NOTIFY SET ...` or `NOTIFY NONE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyRequest {
    /// `NOTIFY NONE`
    None,
    /// `NOTIFY SET [STATUS] groups`
    Set(NotifySet),
}

/// The arguments of `NOTIFY SET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySet {
    /// The `STATUS` indicator: send `* STATUS` for the watched mailboxes now.
    pub status: bool,
    /// The event groups, in the order given (the first whose filter names a mailbox decides).
    pub groups: Vec<EventGroup>,
}

/// `(filter events)`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventGroup {
    /// Which mailboxes.
    pub filter: Filter,
    /// Which events; empty for `NONE`.
    pub events: Vec<Event>,
}

/// `filter-mailboxes`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `SELECTED`
    Selected,
    /// `SELECTED-DELAYED`
    SelectedDelayed,
    /// `INBOXES`
    Inboxes,
    /// `PERSONAL`
    Personal,
    /// `SUBSCRIBED`
    Subscribed,
    /// `SUBTREE names`: the names and everything below them.
    Subtree(Vec<String>),
    /// `MAILBOXES names`: exactly these.
    Mailboxes(Vec<String>),
}

impl Filter {
    /// `SELECTED` or `SELECTED-DELAYED`.
    #[must_use]
    pub fn is_selected(&self) -> bool {
        matches!(self, Filter::Selected | Filter::SelectedDelayed)
    }
}

/// `event`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `MessageNew`, with the FETCH items to send for a new message in the selected mailbox.
    MessageNew(Vec<FetchAttribute>),
    /// `MessageExpunge`
    MessageExpunge,
    /// `FlagChange`
    FlagChange,
    /// `AnnotationChange`
    AnnotationChange,
    /// `MailboxName`
    MailboxName,
    /// `SubscriptionChange`
    SubscriptionChange,
    /// `MailboxMetadataChange` (RFC 5464)
    MailboxMetadataChange,
    /// `ServerMetadataChange` (RFC 5464)
    ServerMetadataChange,
    /// Any other atom (`event-ext`), as sent.
    Other(String),
}

impl Event {
    /// A `message-event`.
    #[must_use]
    pub fn is_message_event(&self) -> bool {
        matches!(
            self,
            Event::MessageNew(_)
                | Event::MessageExpunge
                | Event::FlagChange
                | Event::AnnotationChange
        )
    }
}

/// The arguments after `NOTIFY`.
pub(crate) fn notify(c: &mut Cursor<'_>) -> PResult<NotifyRequest> {
    c.sp()?;
    let verb = c.word()?;
    if verb.eq_ignore_ascii_case(b"NONE") {
        return Ok(NotifyRequest::None);
    }
    if !verb.eq_ignore_ascii_case(b"SET") {
        return syntax("expected SET or NONE");
    }
    c.sp()?;
    let status = c.eat_ignore_case(b"STATUS ");
    let mut groups = Vec::new();
    loop {
        if groups.len() == GROUPS_MAX {
            return fail(ParseErrorKind::TooMany, "too many event groups");
        }
        groups.push(event_group(c)?);
        if !c.eat(b' ') {
            break;
        }
    }
    Ok(NotifyRequest::Set(NotifySet { status, groups }))
}

/// `event-group = "(" filter-mailboxes SP events ")"`
fn event_group(c: &mut Cursor<'_>) -> PResult<EventGroup> {
    c.expect(b'(', "expected an event group")?;
    let filter = filter(c)?;
    c.sp()?;
    let events = events(c)?;
    c.expect(b')', "expected ) after the events")?;
    Ok(EventGroup { filter, events })
}

fn filter(c: &mut Cursor<'_>) -> PResult<Filter> {
    let word = c.word()?;
    Ok(match word.to_ascii_uppercase().as_slice() {
        b"SELECTED" => Filter::Selected,
        b"SELECTED-DELAYED" => Filter::SelectedDelayed,
        b"INBOXES" => Filter::Inboxes,
        b"PERSONAL" => Filter::Personal,
        b"SUBSCRIBED" => Filter::Subscribed,
        b"SUBTREE" => {
            c.sp()?;
            Filter::Subtree(one_or_more_mailbox(c)?)
        }
        b"MAILBOXES" => {
            c.sp()?;
            Filter::Mailboxes(one_or_more_mailbox(c)?)
        }
        _ => return syntax("unknown mailbox filter"),
    })
}

fn one_or_more_mailbox(c: &mut Cursor<'_>) -> PResult<Vec<String>> {
    if !c.eat(b'(') {
        return Ok(vec![mailbox(c)?]);
    }
    list_rest(c, "too many mailboxes", mailbox)
}

fn events(c: &mut Cursor<'_>) -> PResult<Vec<Event>> {
    if !c.eat(b'(') {
        let word = c.word()?;
        if word.eq_ignore_ascii_case(b"NONE") {
            return Ok(Vec::new());
        }
        return syntax("expected events or NONE");
    }
    list_rest(c, "too many events", event)
}

/// `item *(SP item) ")"` (the `(` eaten), at most `list_items_max` items.
fn list_rest<T>(
    c: &mut Cursor<'_>,
    too_many: &'static str,
    item: fn(&mut Cursor<'_>) -> PResult<T>,
) -> PResult<Vec<T>> {
    let mut items = Vec::new();
    loop {
        if items.len() == c.limits.list_items_max {
            return fail(ParseErrorKind::TooMany, too_many);
        }
        items.push(item(c)?);
        if c.eat(b')') {
            return Ok(items);
        }
        c.sp()?;
    }
}

fn event(c: &mut Cursor<'_>) -> PResult<Event> {
    let word = c.atom()?;
    Ok(match word.to_ascii_uppercase().as_slice() {
        b"MESSAGENEW" => {
            let start = c.pos();
            if c.eat(b' ') && c.eat(b'(') {
                Event::MessageNew(list_rest(
                    c,
                    "too many fetch attributes",
                    super::fetch::attribute,
                )?)
            } else {
                c.rewind(start);
                Event::MessageNew(Vec::new())
            }
        }
        b"MESSAGEEXPUNGE" => Event::MessageExpunge,
        b"FLAGCHANGE" => Event::FlagChange,
        b"ANNOTATIONCHANGE" => Event::AnnotationChange,
        b"MAILBOXNAME" => Event::MailboxName,
        b"SUBSCRIPTIONCHANGE" => Event::SubscriptionChange,
        b"MAILBOXMETADATACHANGE" => Event::MailboxMetadataChange,
        b"SERVERMETADATACHANGE" => Event::ServerMetadataChange,
        _ => Event::Other(String::from_utf8_lossy(word).into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::limits::ParseLimits;

    fn parse(text: &str) -> PResult<NotifyRequest> {
        let mut c = Cursor::new(text.as_bytes(), ParseLimits::default(), false);
        let request = notify(&mut c)?;
        c.end()?;
        Ok(request)
    }

    #[test]
    fn none_and_set() {
        assert_eq!(parse(" NONE").unwrap(), NotifyRequest::None);
        let NotifyRequest::Set(set) =
            parse(" set status (selected (MessageNew (uid body.peek[header]) messageexpunge)) (subtree (Lists \"a b\") (MessageNew MessageExpunge)) (personal NONE)")
                .unwrap()
        else {
            panic!("a SET");
        };
        assert!(set.status);
        assert_eq!(set.groups.len(), 3);
        assert_eq!(set.groups[0].filter, Filter::Selected);
        assert!(matches!(&set.groups[0].events[0], Event::MessageNew(items) if items.len() == 2));
        assert_eq!(set.groups[0].events[1], Event::MessageExpunge);
        assert_eq!(set.groups[1].filter, Filter::Subtree(vec!["Lists".into(), "a b".into()]));
        assert_eq!(set.groups[2].events, Vec::new());
    }

    #[test]
    fn one_mailbox_without_parentheses_and_unknown_events() {
        let NotifyRequest::Set(set) =
            parse(" SET (MAILBOXES inbox (MessageNew MessageExpunge Vendor.Event))").unwrap()
        else {
            panic!("a SET");
        };
        assert!(!set.status);
        assert_eq!(set.groups[0].filter, Filter::Mailboxes(vec!["INBOX".into()]));
        assert_eq!(set.groups[0].events[2], Event::Other("Vendor.Event".into()));
    }

    #[test]
    fn malformed() {
        for text in [
            "",
            " SET",
            " SET STATUS",
            " BOGUS",
            " SET (BOGUS (MessageNew))",
            " SET (PERSONAL)",
            " SET (PERSONAL ())",
            " SET (SUBTREE (MailboxName))",
            " SET (PERSONAL (MailboxName)",
            " SET (STATUS) (PERSONAL (MailboxName))",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }
}

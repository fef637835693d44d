//! The PARTIAL FETCH modifier (RFC 9394 §3.3): `UID FETCH 1:* (FLAGS) (PARTIAL -1:-30)` answers
//! only the messages at those positions among the ones the sequence set names, counted in
//! mailbox order from the lowest (`1:30`) or from the highest (`-1:-30`).
//!
//! The positions are found on the view's UID list: each range of the set becomes an interval
//! of view indexes (a binary search for UIDs), the intervals are merged, and only the indexes
//! inside the PARTIAL range are produced. The work is O(ranges × log n) plus the page itself,
//! never a list of every message the set names (`1:*` on a million messages costs what the page
//! costs). CHANGEDSINCE then filters the page as it would the whole set, which is how skua
//! reads RFC 9394 §3.4: the page is chosen from the set, CHANGEDSINCE applies to it.

use crate::imap::types::{PartialRange, SequenceSet};
use crate::imap::view::View;

/// Indexes (0-based, ascending) of the messages `set` names that fall in `range`.
#[must_use]
pub(crate) fn select(view: &View, set: &SequenceSet, uid: bool, range: PartialRange) -> Vec<usize> {
    // `$` names UIDs whatever the command (RFC 5182 §2.1).
    let (set, uid) = if set.is_saved() {
        match view.concrete(set) {
            Some(concrete) => (concrete, true),
            None => return Vec::new(),
        }
    } else {
        (set.clone(), uid)
    };
    let intervals = view.intervals(&set, uid);
    let total: usize = intervals.iter().map(|(start, end)| end - start).sum();
    let (low, high) = (range.low as usize, range.high as usize);
    if low > total {
        return Vec::new();
    }
    // Positions `first..end` (0-based) within the messages the set names.
    let (first, end) = if range.from_end {
        (total.saturating_sub(high), total - (low - 1))
    } else {
        (low - 1, high.min(total))
    };
    let mut indexes = Vec::with_capacity(end - first);
    let mut position = 0;
    for (start, stop) in intervals {
        let len = stop - start;
        let from = first.max(position);
        let to = end.min(position + len);
        if from < to {
            indexes.extend((from - position + start)..(to - position + start));
        }
        position += len;
        if position >= end {
            break;
        }
    }
    indexes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::types::SeqBound;
    use skua_core::store::MessageMeta;
    use skua_core::types::{Flags, InternalDate, MailboxId, ModSeq, Uid, UidValidity};
    use std::num::NonZeroU32;

    fn view_of(uids: &[u32]) -> View {
        let messages: Vec<MessageMeta> = uids
            .iter()
            .map(|&uid| MessageMeta {
                uid: Uid::new(uid).unwrap(),
                modseq: ModSeq(1),
                flags: Flags::default(),
                internal_date: InternalDate { unix_seconds: 0, zone_minutes: 0 },
                size: 10,
                save_date: None,
            })
            .collect();
        let validity = UidValidity(NonZeroU32::new(9).unwrap());
        View::new(MailboxId(1), false, validity, &messages, ModSeq(1), 1)
    }

    fn set(ranges: &[(u32, Option<u32>)]) -> SequenceSet {
        let bound = |v: Option<u32>| v.map_or(SeqBound::Largest, SeqBound::Value);
        SequenceSet::new(ranges.iter().map(|&(a, b)| (SeqBound::Value(a), bound(b))).collect())
            .unwrap()
    }

    fn range(low: u32, high: u32, from_end: bool) -> PartialRange {
        PartialRange { low, high, from_end, reversed: false }
    }

    #[test]
    fn positive_and_negative_pages_of_a_uid_set() {
        let view = view_of(&[10, 20, 21, 22, 30, 40]);
        let all = set(&[(1, None)]);
        assert_eq!(select(&view, &all, true, range(1, 2, false)), vec![0, 1]);
        assert_eq!(select(&view, &all, true, range(1, 2, true)), vec![4, 5]);
        assert_eq!(select(&view, &all, true, range(3, 4, true)), vec![2, 3]);
        // Past the end: what is left of the page, or nothing.
        assert_eq!(select(&view, &all, true, range(5, 100, false)), vec![4, 5]);
        assert_eq!(select(&view, &all, true, range(4, 100, true)), vec![0, 1, 2]);
        assert!(select(&view, &all, true, range(7, 9, false)).is_empty());
        assert!(select(&view, &all, true, range(7, 9, true)).is_empty());
        // Positions count within the set: 21:30 names UIDs 21, 22 and 30.
        assert_eq!(select(&view, &set(&[(30, Some(21))]), true, range(1, 1, true)), vec![4]);
        assert_eq!(select(&view, &set(&[(21, Some(30))]), true, range(2, 3, false)), vec![3, 4]);
    }

    #[test]
    fn overlapping_ranges_and_sequence_numbers() {
        let view = view_of(&[10, 20, 21, 22, 30, 40]);
        // 40,10:21,20 names 10, 20, 21 and 40 once each, in mailbox order.
        let uids = set(&[(40, Some(40)), (10, Some(21)), (20, Some(20))]);
        assert_eq!(select(&view, &uids, true, range(2, 4, false)), vec![1, 2, 5]);
        assert_eq!(select(&view, &uids, true, range(1, 1, true)), vec![5]);
        // Message numbers: 2:* is messages 2..6.
        let msns = set(&[(2, None)]);
        assert_eq!(select(&view, &msns, false, range(2, 3, false)), vec![2, 3]);
        assert_eq!(
            select(&view, &set(&[(1, Some(2)), (5, Some(6))]), false, range(2, 3, true)),
            vec![1, 4]
        );
    }

    #[test]
    fn a_page_of_a_huge_set_costs_the_page() {
        let uids: Vec<u32> = (1..=100_000).collect();
        let view = view_of(&uids);
        let page = select(&view, &set(&[(1, None)]), true, range(1, 30, true));
        assert_eq!(page, (99_970..100_000).collect::<Vec<_>>());
        assert!(page.capacity() <= 30);
        let last = select(&view, &set(&[(1, None)]), true, range(u32::MAX - 1, u32::MAX, true));
        assert!(last.is_empty());
    }

    #[test]
    fn saved_result() {
        let mut view = view_of(&[10, 20, 21, 22, 30, 40]);
        view.save_result(vec![Uid::new(20).unwrap(), Uid::new(30).unwrap(), Uid::new(40).unwrap()]);
        let saved = SequenceSet::saved_result();
        assert_eq!(select(&view, &saved, false, range(1, 2, true)), vec![4, 5]);
        view.save_result(Vec::new());
        assert!(select(&view, &saved, true, range(1, 2, false)).is_empty());
    }
}

//! Sets of UIDs as sorted ranges, the shape a reader's `\Seen` set is kept and logged in
//! (`seen.rs`, `seen_log.rs`; `core/FORMAT.md`, "seen.log").
//!
//! A set is *canonical* when its ranges are inclusive `(first, last)` pairs with
//! `1 <= first <= last`, in ascending order, neither overlapping nor adjacent (`last + 1 <
//! next first`): every set has exactly one canonical form, so equal sets compare equal and a
//! reader who read everything is one range. Every function here takes and returns canonical
//! sets; `seen_log.rs` refuses a record whose ranges are not.

/// Inclusive UID ranges, canonical (see the module docs).
pub(crate) type Ranges = Vec<(u32, u32)>;

/// True when `ranges` is canonical.
pub(crate) fn is_canonical(ranges: &[(u32, u32)]) -> bool {
    ranges.iter().all(|&(first, last)| first >= 1 && first <= last)
        && ranges.windows(2).all(|pair| u64::from(pair[0].1) + 1 < u64::from(pair[1].0))
}

/// The canonical set of `uids`, which must be ascending and distinct.
pub(crate) fn from_sorted(uids: impl IntoIterator<Item = u32>) -> Ranges {
    let mut ranges: Ranges = Vec::new();
    for uid in uids {
        assert!(uid >= 1, "UIDs start at 1");
        match ranges.last_mut() {
            Some(last) => {
                assert!(uid > last.1, "ascending and distinct");
                if uid == last.1 + 1 {
                    last.1 = uid;
                } else {
                    ranges.push((uid, uid));
                }
            }
            None => ranges.push((uid, uid)),
        }
    }
    ranges
}

/// True when `uid` is in `ranges`. O(log ranges).
pub(crate) fn contains(ranges: &[(u32, u32)], uid: u32) -> bool {
    let at = ranges.partition_point(|&(_, last)| last < uid);
    ranges.get(at).is_some_and(|&(first, _)| first <= uid)
}

/// `a ∪ b`. O(a + b).
pub(crate) fn union(a: &[(u32, u32)], b: &[(u32, u32)]) -> Ranges {
    let mut out: Ranges = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = if j >= b.len() || (i < a.len() && a[i].0 <= b[j].0) {
            i += 1;
            a[i - 1]
        } else {
            j += 1;
            b[j - 1]
        };
        push_merged(&mut out, next);
    }
    debug_assert!(is_canonical(&out));
    out
}

/// `a ∖ b`. O(a + b).
pub(crate) fn difference(a: &[(u32, u32)], b: &[(u32, u32)]) -> Ranges {
    let mut out: Ranges = Vec::with_capacity(a.len());
    let mut j = 0;
    for &(first, last) in a {
        let mut cursor = u64::from(first);
        let last = u64::from(last);
        while j < b.len() && u64::from(b[j].1) < cursor {
            j += 1;
        }
        let mut k = j;
        while cursor <= last {
            match b.get(k) {
                Some(&(cut_first, cut_last)) if u64::from(cut_first) <= last => {
                    if u64::from(cut_first) > cursor {
                        out.push((narrow(cursor), cut_first - 1));
                    }
                    cursor = cursor.max(u64::from(cut_last) + 1);
                    k += 1;
                }
                _ => {
                    out.push((narrow(cursor), narrow(last)));
                    break;
                }
            }
        }
    }
    debug_assert!(is_canonical(&out));
    out
}

/// `set ∪= add`, in place: O(add · log set) comparisons and one move of the tail per range
/// of `add` (a memmove), instead of a merge that copies the whole set. A replay applies many
/// one-range records to one large set: this keeps each O(log set). Falls back to [`union`]
/// when `add` is not small beside `set`.
pub(crate) fn add_into(set: &mut Ranges, add: &[(u32, u32)]) {
    if add.len() * 8 > set.len() {
        *set = union(set, add);
        return;
    }
    for &(first, last) in add {
        // The ranges that overlap or touch `first..=last` merge with it.
        let low = set.partition_point(|&(_, end)| u64::from(end) + 1 < u64::from(first));
        let high = set.partition_point(|&(start, _)| u64::from(start) <= u64::from(last) + 1);
        let merged = if low < high {
            (set[low].0.min(first), set[high - 1].1.max(last))
        } else {
            (first, last)
        };
        set.splice(low..high, [merged]);
    }
    debug_assert!(is_canonical(set));
}

/// `set ∖= cut`, in place, as [`add_into`] (falls back to [`difference`]).
pub(crate) fn remove_from(set: &mut Ranges, cut: &[(u32, u32)]) {
    if cut.len() * 8 > set.len() {
        *set = difference(set, cut);
        return;
    }
    for &(first, last) in cut {
        let low = set.partition_point(|&(_, end)| end < first);
        let high = set.partition_point(|&(start, _)| start <= last);
        if low >= high {
            continue;
        }
        let mut kept = [(0, 0); 2];
        let mut count = 0;
        if set[low].0 < first {
            kept[count] = (set[low].0, first - 1);
            count += 1;
        }
        if set[high - 1].1 > last {
            kept[count] = (last + 1, set[high - 1].1);
            count += 1;
        }
        set.splice(low..high, kept[..count].iter().copied());
    }
    debug_assert!(is_canonical(set));
}

/// Appends `range` (starting at or after the last range's start) to `out`, merging it with the
/// last range when they overlap or touch.
fn push_merged(out: &mut Ranges, range: (u32, u32)) {
    match out.last_mut() {
        Some(last) if u64::from(last.1) + 1 >= u64::from(range.0) => last.1 = last.1.max(range.1),
        _ => out.push(range),
    }
}

fn narrow(value: u64) -> u32 {
    u32::try_from(value).expect("within a range of u32 UIDs")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn of(set: &BTreeSet<u32>) -> Ranges {
        from_sorted(set.iter().copied())
    }

    #[test]
    fn canonical_forms() {
        assert!(is_canonical(&[]));
        assert!(is_canonical(&[(1, 1), (3, 5), (7, u32::MAX)]));
        assert!(!is_canonical(&[(0, 1)]), "UID 0");
        assert!(!is_canonical(&[(3, 2)]), "reversed");
        assert!(!is_canonical(&[(1, 2), (3, 4)]), "adjacent");
        assert!(!is_canonical(&[(1, 5), (4, 8)]), "overlapping");
        assert!(!is_canonical(&[(5, 6), (1, 2)]), "descending");
        assert_eq!(from_sorted([1, 2, 3, 5, 7, 8]), vec![(1, 3), (5, 5), (7, 8)]);
        assert!(contains(&[(2, 4), (9, 9)], 9) && !contains(&[(2, 4), (9, 9)], 5));
    }

    proptest::proptest! {
        #[test]
        fn union_and_difference_match_sets(
            a in proptest::collection::btree_set(1u32..60, 0..40),
            b in proptest::collection::btree_set(1u32..60, 0..6),
        ) {
            let (ra, rb) = (of(&a), of(&b));
            proptest::prop_assert!(is_canonical(&ra));
            proptest::prop_assert_eq!(union(&ra, &rb), of(&a.union(&b).copied().collect()));
            proptest::prop_assert_eq!(
                difference(&ra, &rb),
                of(&a.difference(&b).copied().collect())
            );
            proptest::prop_assert_eq!(union(&rb, &ra), of(&a.union(&b).copied().collect()));
            proptest::prop_assert_eq!(
                difference(&rb, &ra),
                of(&b.difference(&a).copied().collect())
            );
            let mut added = ra.clone();
            add_into(&mut added, &rb);
            proptest::prop_assert_eq!(&added, &union(&ra, &rb));
            let mut removed = ra.clone();
            remove_from(&mut removed, &rb);
            proptest::prop_assert_eq!(&removed, &difference(&ra, &rb));
            for uid in 0..62 {
                proptest::prop_assert_eq!(contains(&ra, uid), a.contains(&uid));
            }
        }
    }

    #[test]
    fn extremes_do_not_overflow() {
        let all = vec![(1, u32::MAX)];
        assert_eq!(union(&all, &[(5, 9)]), all);
        assert_eq!(difference(&all, &[(1, 1), (u32::MAX, u32::MAX)]), vec![(2, u32::MAX - 1)]);
        assert_eq!(difference(&all, &all), Vec::new());
        assert_eq!(difference(&[(4, 10)], &[(1, 5), (7, 7), (9, 20)]), vec![(6, 6), (8, 8)]);
        let mut many: Ranges = (1..=40).map(|i| (i * 4, i * 4 + 1)).collect();
        add_into(&mut many, &[(1, u32::MAX)]);
        assert_eq!(many, all);
        let mut many: Ranges = (1..=40).map(|i| (i * 4, i * 4 + 1)).collect();
        add_into(&mut many, &[(6, 7)]);
        assert_eq!(many[..2], [(4, 9), (12, 13)]);
        remove_from(&mut many, &[(5, 5), (u32::MAX, u32::MAX)]);
        assert_eq!(many[..3], [(4, 4), (6, 9), (12, 13)]);
        remove_from(&mut many, &[(1, u32::MAX)]);
        assert!(many.is_empty());
    }
}

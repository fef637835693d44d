//! LIST patterns (RFC 9051 §6.3.9): `*` matches any sequence, `%` any sequence without the
//! hierarchy separator `/`, every other byte itself.
//!
//! Matching is a bit-parallel walk of the pattern's NFA: one bit per pattern position, a few
//! word operations per name byte, so a match costs O(name × pattern / 64) with no
//! backtracking and no allocation. Two rules keep the pattern short: runs of wildcards
//! collapse to one (`**`, `*%`, `%*` are `*`; `%%` is `%`), and a pattern with more literal
//! bytes than a mailbox name can hold matches nothing, so a compiled pattern is at most
//! `2 × MAILBOX_NAME_BYTES_MAX + 1` positions long. A 20,000-byte `*a*a*a…` thus compiles to
//! "matches nothing" at once, and a long but possible pattern costs a few dozen words per name
//! byte.

use skua_core::limits::MAILBOX_NAME_BYTES_MAX;

/// The hierarchy separator, as a byte.
const SEPARATOR: u8 = b'/';

/// A compiled pattern.
#[derive(Debug)]
pub(crate) struct Pattern {
    /// Positions (compressed pattern length); states run from 0 to `len`.
    len: usize,
    /// u64 words per state set.
    words: usize,
    /// Bit i set: position i is `*`.
    star: Vec<u64>,
    /// Bit i set: position i is `%`.
    percent: Vec<u64>,
    /// For each byte value, its slot in `literal` (0: the byte occurs nowhere).
    slot: Box<[u8; 256]>,
    /// Slot s > 0: bit i set where position i is that byte. Slot 0 is all zero.
    literal: Vec<Vec<u64>>,
    /// Bytes a name needs at least (the literal positions).
    literals: usize,
    /// No name can match (too many literal bytes).
    impossible: bool,
}

impl Pattern {
    /// Compiles `pattern`.
    pub(crate) fn new(pattern: &[u8]) -> Pattern {
        let compressed = compress(pattern);
        let literals = compressed.iter().filter(|&&b| b != b'*' && b != b'%').count();
        let impossible = literals > MAILBOX_NAME_BYTES_MAX;
        let compressed = if impossible { Vec::new() } else { compressed };
        let len = compressed.len();
        let words = (len + 1).div_ceil(64);
        let mut compiled = Pattern {
            len,
            words,
            star: vec![0; words],
            percent: vec![0; words],
            slot: Box::new([0; 256]),
            literal: vec![vec![0; words]],
            literals,
            impossible,
        };
        for (i, &byte) in compressed.iter().enumerate() {
            let (word, bit) = (i / 64, 1u64 << (i % 64));
            match byte {
                b'*' => compiled.star[word] |= bit,
                b'%' => compiled.percent[word] |= bit,
                _ => {
                    let slot = compiled.slot_of(byte);
                    compiled.literal[slot][word] |= bit;
                }
            }
        }
        compiled
    }

    /// The slot of `byte`, allocated on first use (at most 255 distinct bytes are literals:
    /// `*` and `%` never are).
    fn slot_of(&mut self, byte: u8) -> usize {
        let slot = usize::from(self.slot[usize::from(byte)]);
        if slot != 0 {
            return slot;
        }
        self.literal.push(vec![0; self.words]);
        let slot = self.literal.len() - 1;
        self.slot[usize::from(byte)] = u8::try_from(slot).expect("at most 254 literal bytes");
        slot
    }

    /// Words of state one name byte costs: the work unit of a match (`slice.rs`).
    pub(crate) fn words(&self) -> usize {
        self.words
    }

    /// Memory the compiled pattern holds, in u64 words (bounded per command by the caller).
    pub(crate) fn size_words(&self) -> usize {
        self.words * (2 + self.literal.len())
    }

    /// True when `name` matches.
    pub(crate) fn matches(&self, name: &[u8], scratch: &mut Scratch) -> bool {
        if self.impossible || self.literals > name.len() {
            return false;
        }
        scratch.reset(self.words);
        let Scratch { current, next } = scratch;
        current[0] = 1;
        self.close(current);
        for &byte in name {
            let literal = &self.literal[usize::from(self.slot[usize::from(byte)])];
            let mut carry = 0u64;
            let mut any = 0u64;
            for w in 0..self.words {
                let state = current[w];
                let stay_percent = if byte == SEPARATOR { 0 } else { state & self.percent[w] };
                let advanced = state & literal[w];
                next[w] = (state & self.star[w]) | stay_percent | (advanced << 1) | carry;
                carry = advanced >> 63;
                any |= next[w];
            }
            if any == 0 {
                return false;
            }
            self.close(next);
            std::mem::swap(current, next);
        }
        current[self.len / 64] & (1u64 << (self.len % 64)) != 0
    }

    /// A wildcard may match nothing: a state before one also stands after it. Wildcards never
    /// follow each other in a compiled pattern, so one step closes the set.
    fn close(&self, states: &mut [u64]) {
        let mut carry = 0u64;
        for ((state, star), percent) in states.iter_mut().zip(&self.star).zip(&self.percent) {
            let before_wildcard = *state & (star | percent);
            *state |= (before_wildcard << 1) | carry;
            carry = before_wildcard >> 63;
        }
    }
}

/// State sets reused across matches (one allocation per LIST, not per name byte).
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    current: Vec<u64>,
    next: Vec<u64>,
}

impl Scratch {
    fn reset(&mut self, words: usize) {
        self.current.clear();
        self.current.resize(words, 0);
        self.next.clear();
        self.next.resize(words, 0);
    }
}

/// Collapses each run of wildcards to one: `*` if the run holds a `*`, else `%`.
fn compress(pattern: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(pattern.len().min(4 * MAILBOX_NAME_BYTES_MAX));
    for &byte in pattern {
        let wildcard = byte == b'*' || byte == b'%';
        match out.last_mut() {
            Some(last) if wildcard && (*last == b'*' || *last == b'%') => {
                if byte == b'*' {
                    *last = b'*';
                }
            }
            _ => out.push(byte),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        Pattern::new(pattern.as_bytes()).matches(name.as_bytes(), &mut Scratch::default())
    }

    /// The definition, by backtracking: exponential, for small inputs only.
    fn reference(pattern: &[u8], name: &[u8]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some((b'*', rest)) => (0..=name.len()).any(|i| reference(rest, &name[i..])),
            Some((b'%', rest)) => (0..=name.len())
                .take_while(|&i| i == 0 || name[i - 1] != b'/')
                .any(|i| reference(rest, &name[i..])),
            Some((&c, rest)) => name.first() == Some(&c) && reference(rest, &name[1..]),
        }
    }

    #[test]
    fn wildcards() {
        assert!(matches("*", "a/b/c"));
        assert!(matches("%", "abc"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(!matches("a/%", "a/b/c"));
        assert!(matches("a/*", "a/b/c"));
        assert!(matches("a*c", "abbbc"));
        assert!(!matches("a*c", "abbbd"));
        assert!(matches("%/%", "x/y"));
        assert!(matches("INBOX", "INBOX"));
        assert!(!matches("INBOX", "INBOX/x"));
        assert!(matches("", ""));
        assert!(matches("**%%", "abc"));
        assert!(matches("%*", "a/b"), "a run holding * is *");
        assert!(!matches("%%", "a/b"), "a run of % is %");
    }

    #[test]
    fn agrees_with_the_definition_on_every_small_case() {
        // Every pattern over {a, /, *, %} up to 5 bytes against every name over {a, b, /} up
        // to 5 bytes: the bit-parallel walk is the definition.
        let pattern_alphabet = [b'a', b'/', b'*', b'%'];
        let name_alphabet = [b'a', b'b', b'/'];
        let patterns = all_strings(&pattern_alphabet, 5);
        let names = all_strings(&name_alphabet, 5);
        let mut scratch = Scratch::default();
        for pattern in &patterns {
            let compiled = Pattern::new(pattern);
            for name in &names {
                assert_eq!(
                    compiled.matches(name, &mut scratch),
                    reference(pattern, name),
                    "{:?} vs {:?}",
                    String::from_utf8_lossy(pattern),
                    String::from_utf8_lossy(name)
                );
            }
        }
    }

    fn all_strings(alphabet: &[u8], longest: usize) -> Vec<Vec<u8>> {
        let mut all = vec![Vec::new()];
        let mut layer = vec![Vec::new()];
        for _ in 0..longest {
            layer = layer
                .iter()
                .flat_map(|s| {
                    alphabet.iter().map(move |&c| {
                        let mut longer = s.clone();
                        longer.push(c);
                        longer
                    })
                })
                .collect();
            all.extend(layer.iter().cloned());
        }
        all
    }

    #[test]
    fn long_patterns_cross_word_boundaries() {
        let name = "a".repeat(200);
        let pattern = "a".repeat(199) + "%";
        assert!(matches(&pattern, &name));
        assert!(!matches(&("a".repeat(201)), &name));
        let pattern: String = "*a".repeat(100);
        assert!(matches(&pattern, &name));
        assert!(!matches(&(pattern + "b"), &name));
    }

    #[test]
    fn a_huge_pattern_compiles_small_and_matches_nothing() {
        let pattern = "*a".repeat(10_000);
        let compiled = Pattern::new(pattern.as_bytes());
        assert!(compiled.impossible);
        assert_eq!(compiled.words(), 1, "nothing kept of an impossible pattern");
        assert!(
            !compiled
                .matches("a".repeat(MAILBOX_NAME_BYTES_MAX).as_bytes(), &mut Scratch::default())
        );
        let wildcards = "*%".repeat(10_000);
        let compiled = Pattern::new(wildcards.as_bytes());
        assert_eq!(compiled.len, 1, "a run of wildcards is one position");
        assert!(compiled.matches(b"x/y", &mut Scratch::default()));
    }
}

//! Which shard owns a user: `shard = mix(fnv1a64(user)) mod shard_count`.
//!
//! The function must give the same answer in every process, on every machine and with every
//! Rust release, because a user's data lives on their home shard and a restarted server must
//! find it there. Std's `DefaultHasher` promises none of that, so the hash is written out here:
//! FNV-1a 64 (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) over the UTF-8 bytes of
//! the canonical user name (as the passwd-file spells it), then the 64-bit finaliser of
//! MurmurHash3 (`fmix64`) so that the low bits used by `mod` depend on every input byte. The
//! test below pins concrete answers; changing any of them is a data-layout change.

/// The index of a shard, `0..shard_count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

impl ShardId {
    /// The index for in-memory tables of shards.
    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard-{}", self.0)
    }
}

/// FNV-1a, 64-bit: the stable byte hash behind [`shard_for`].
#[must_use]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
}

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
#[must_use]
fn fmix64(mut value: u64) -> u64 {
    value ^= value >> 33;
    value = value.wrapping_mul(0xff51_afd7_ed55_8ccd);
    value ^= value >> 33;
    value = value.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    value ^ (value >> 33)
}

/// The home shard of `user` among `shard_count` shards.
///
/// # Panics
/// If `shard_count` is zero or does not fit a [`ShardId`]: the runtime never starts that way.
#[must_use]
pub fn shard_for(user: &str, shard_count: usize) -> ShardId {
    assert!(shard_count > 0, "there is always at least one shard");
    let count = u64::try_from(shard_count).expect("shard count fits u64");
    let index = fmix64(fnv1a64(user.as_bytes())) % count;
    ShardId(u32::try_from(index).expect("shard count fits u32"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// Pinned answers: if this test fails, users would wake up on the wrong shard after an
    /// upgrade. Never update these numbers to make the test pass.
    #[test]
    fn placement_is_pinned() {
        let cases: [(&str, usize, u32); 14] = [
            ("alice", 2, 0),
            ("bob", 2, 0),
            ("carol", 2, 0),
            ("frank", 2, 1),
            ("ivan", 2, 1),
            ("alice", 3, 2),
            ("bob", 3, 1),
            ("carol", 3, 1),
            ("alice@example.org", 4, 0),
            ("bob@example.org", 4, 1),
            ("user1", 8, 7),
            ("user2", 8, 1),
            ("user3", 2, 1),
            ("x", 1, 0),
        ];
        for (user, count, expected) in cases {
            assert_eq!(shard_for(user, count), ShardId(expected), "{user} among {count}");
        }
    }

    #[test]
    fn placement_spreads_users() {
        let count = 4;
        let mut seen = [0u32; 4];
        for i in 0..4000 {
            seen[shard_for(&format!("user{i}"), count).index()] += 1;
        }
        for n in seen {
            assert!((800..1200).contains(&n), "uneven spread: {seen:?}");
        }
    }

    #[test]
    fn single_shard_owns_everyone() {
        assert_eq!(shard_for("anyone", 1), ShardId(0));
        assert_eq!(shard_for("", 1), ShardId(0));
    }
}

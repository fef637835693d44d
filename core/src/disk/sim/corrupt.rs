//! Media corruption: damage that no write caused, for tests that the store detects bad bytes
//! (checksums, magic numbers, lengths) and never serves them, panics on them, or trusts them.
//!
//! Unlike a crash, corruption changes the live and the durable image alike: it models a disk
//! that returns other bytes than were written (a flipped bit, a sector read back as zeros),
//! not a write that did not happen.

use super::rng::SimRng;
use super::{SECTOR_BYTES, SimDisk, lock};

impl SimDisk {
    /// Damages `count` places in the files of this disk, chosen from `seed`: each either flips
    /// one bit or zeroes one 512-byte sector. Returns one line per damage (file, offset, what),
    /// for the test's failure message. Empty files are left alone; pending (unflushed) writes
    /// are not touched, so corrupt a disk with none (a crashed or fully flushed one).
    ///
    /// # Panics
    /// If the disk has pending writes.
    #[must_use = "the damage lines explain a failure"]
    pub fn corrupt(&self, seed: u64, count: usize) -> Vec<String> {
        let mut state = lock(&self.state);
        assert!(state.pending.is_empty(), "corrupt a disk without pending writes");
        let mut rng = SimRng::new(seed);
        let files: Vec<(String, u64)> = state
            .live
            .files()
            .filter(|(_, inode)| !state.live.contents(*inode).is_empty())
            .map(|(path, inode)| (path.display().to_string(), inode))
            .collect();
        let mut damage = Vec::new();
        for _ in 0..count {
            if files.is_empty() {
                break;
            }
            let (name, inode) = &files[rng.index(files.len())];
            let len = state.live.contents(*inode).len();
            let offset = rng.index(len);
            let state = &mut *state;
            let (live, durable) = (&mut state.live, &mut state.durable);
            if rng.chance(1, 2) {
                let mask = 1u8 << rng.below(8);
                for image in [live, durable] {
                    image.contents_mut(*inode)[offset] ^= mask;
                }
                damage.push(format!("{name}: bit {mask:#04x} flipped at {offset}"));
            } else {
                let start = offset / SECTOR_BYTES * SECTOR_BYTES;
                let end = (start + SECTOR_BYTES).min(len);
                for image in [live, durable] {
                    image.contents_mut(*inode)[start..end].fill(0);
                }
                damage.push(format!("{name}: sector [{start}, {end}) zeroed"));
            }
        }
        damage
    }
}

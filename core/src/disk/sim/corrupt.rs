//! Media corruption: damage that no write caused, for tests that the store detects bad bytes
//! (checksums, magic numbers, lengths) and never serves them, panics on them, or trusts them.
//!
//! Unlike a crash, corruption changes the live and the durable image alike: it models a disk
//! that returns other bytes than were written (a flipped bit, a sector read back as zeros, a
//! sector written to the wrong place), not a write that did not happen.

use std::io;
use std::path::Path;

use super::image::{InodeId, normalize};
use super::rng::SimRng;
use super::{SECTOR_BYTES, SimDisk, State, lock};

/// One kind of damage to a file's bytes at rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The bits of `mask` flipped in the byte at `offset`.
    Flip {
        /// The byte.
        offset: usize,
        /// The bits flipped.
        mask: u8,
    },
    /// The 512-byte sector holding `offset` reads back as zeros.
    Zero {
        /// Any byte of the sector.
        offset: usize,
    },
    /// The sector starting at `source` written over the one starting at `target` too (a
    /// misdirected write): both are sector-aligned.
    Misdirect {
        /// Where the bytes belong.
        source: usize,
        /// Where they also landed.
        target: usize,
    },
}

impl SimDisk {
    /// Damages one file. Offsets past the end are cut to it.
    ///
    /// # Errors
    /// `NotFound` if no such file; `InvalidInput` for a path leaving the root or an
    /// unaligned or out-of-range [`Damage::Misdirect`].
    ///
    /// # Panics
    /// If the disk has pending writes: damage a disk with none (crashed or fully flushed).
    pub fn damage(&self, path: &Path, damage: Damage) -> io::Result<()> {
        let path = normalize(path)?;
        let mut state = lock(&self.state);
        assert!(state.pending.is_empty(), "damage a disk without pending writes");
        let inode = state.live.inode(&path).ok_or(io::ErrorKind::NotFound)?;
        let len = state.live.contents(inode).len();
        match damage {
            Damage::Flip { offset, mask } if offset < len => {
                damage_both(&mut state, inode, |bytes| bytes[offset] ^= mask);
            }
            Damage::Zero { offset } if offset < len => {
                let start = offset / SECTOR_BYTES * SECTOR_BYTES;
                let end = (start + SECTOR_BYTES).min(len);
                damage_both(&mut state, inode, |bytes| bytes[start..end].fill(0));
            }
            Damage::Misdirect { source, target } => {
                let aligned = source % SECTOR_BYTES == 0 && target % SECTOR_BYTES == 0;
                if !aligned || source >= len || target >= len {
                    return Err(io::ErrorKind::InvalidInput.into());
                }
                let size = SECTOR_BYTES.min(len - target).min(len - source);
                let copy = |bytes: &mut Vec<u8>| bytes.copy_within(source..source + size, target);
                damage_both(&mut state, inode, copy);
            }
            Damage::Flip { .. } | Damage::Zero { .. } => {}
        }
        Ok(())
    }

    /// Damages `count` places in the files of this disk, chosen from `seed`: each flips one
    /// bit, zeroes one sector, or copies another sector of the file over one. Returns one line
    /// per damage (file and [`Damage`]) for the test's failure message. Empty files are left
    /// alone.
    ///
    /// # Panics
    /// If the disk has pending writes (see [`SimDisk::damage`]).
    #[must_use = "the damage lines explain a failure"]
    pub fn corrupt(&self, seed: u64, count: usize) -> Vec<String> {
        let mut rng = SimRng::new(seed);
        let files: Vec<(String, usize)> = {
            let state = lock(&self.state);
            let live = &state.live;
            live.files()
                .map(|(path, inode)| (path.display().to_string(), live.contents(inode).len()))
                .filter(|(_, len)| *len > 0)
                .collect()
        };
        let mut lines = Vec::new();
        for _ in 0..count {
            if files.is_empty() {
                break;
            }
            let (name, len) = &files[rng.index(files.len())];
            let offset = rng.index(*len);
            let damage = match rng.below(3) {
                0 => Damage::Flip { offset, mask: 1 << rng.below(8) },
                1 => Damage::Zero { offset },
                _ => Damage::Misdirect {
                    source: rng.index(len.div_ceil(SECTOR_BYTES)) * SECTOR_BYTES,
                    target: offset / SECTOR_BYTES * SECTOR_BYTES,
                },
            };
            self.damage(Path::new(name), damage).expect("a file of this disk, in range");
            lines.push(format!("{name}: {damage:?}"));
        }
        lines
    }
}

/// Applies the same damage to the live and the durable bytes of an inode.
fn damage_both(state: &mut State, inode: InodeId, damage: impl Fn(&mut Vec<u8>)) {
    damage(state.live.contents_mut(inode));
    damage(state.durable.contents_mut(inode));
}

//! Recovering a spool segment's checksum seed from one of its records, for a segment whose
//! header (and so its nonce) was damaged at rest (`core/FORMAT.md`, "Recovery on open",
//! step 4).
//!
//! A record's checksum is `crc32c_append(seed, bytes)` with `seed = crc32c(nonce)`: every
//! check needs only the 32-bit seed, never the nonce itself. CRC-32C is affine over GF(2), so
//! `crc32c_append(seed, bytes) = Z_n(seed) ^ crc32c_append(0, bytes)`, where `Z_n` is the
//! linear map "run the register over `n` zero bytes" and depends only on `n`. `Z_n` is
//! invertible (the CRC polynomial has a constant term), so one intact record whose stored
//! checksum is authentic (the index keeps a copy) gives the seed, which a second record then
//! confirms. A nonce with that seed is then found the same way, so the header can be rewritten
//! and every reader keeps working from a nonce.

/// A linear map on 32-bit vectors over GF(2), by the images of the 32 unit vectors.
#[derive(Clone, Copy)]
struct Matrix([u32; 32]);

impl Matrix {
    fn apply(&self, vector: u32) -> u32 {
        (0..32).filter(|bit| vector & (1 << bit) != 0).fold(0, |sum, bit| sum ^ self.0[bit])
    }

    /// `self ∘ other`.
    fn compose(&self, other: &Matrix) -> Matrix {
        Matrix(std::array::from_fn(|i| self.apply(other.0[i])))
    }

    /// The map of a function known to be linear.
    fn of(f: impl Fn(u32) -> u32) -> Matrix {
        Matrix(std::array::from_fn(|i| f(1 << i)))
    }

    /// The `x` with `self.apply(x) == target`, if the map is invertible.
    fn solve(&self, target: u32) -> Option<u32> {
        // Row j: which unknowns output bit j sums, and the bit it must equal.
        let mut rows: Vec<(u32, bool)> = (0..32)
            .map(|j| {
                let mask = (0..32).fold(0u32, |m, i| m | (((self.0[i] >> j) & 1) << i));
                (mask, target & (1 << j) != 0)
            })
            .collect();
        for column in 0..32 {
            let pivot = (column..32).find(|&r| rows[r].0 & (1 << column) != 0)?;
            rows.swap(column, pivot);
            let (mask, bit) = rows[column];
            for (r, row) in rows.iter_mut().enumerate() {
                if r != column && row.0 & (1 << column) != 0 {
                    row.0 ^= mask;
                    row.1 ^= bit;
                }
            }
        }
        Some((0..32).fold(0, |x, j| x | (u32::from(rows[j].1) << j)))
    }
}

/// The map `seed -> crc32c_append(seed, zeros(n)) ^ crc32c_append(0, zeros(n))`.
fn zeros_map(n: u64) -> Matrix {
    let one = |seed: u32| crc32c::crc32c_append(seed, &[0]) ^ crc32c::crc32c_append(0, &[0]);
    let mut power = Matrix::of(one);
    let mut result = Matrix::of(|v| v);
    let mut n = n;
    while n > 0 {
        if n & 1 == 1 {
            result = result.compose(&power);
        }
        power = power.compose(&power);
        n >>= 1;
    }
    result
}

/// The seed under which `crc32c_append(seed, covered) == crc`.
pub(crate) fn seed_for(covered: &[u8], crc: u32) -> Option<u32> {
    let target = crc ^ crc32c::crc32c_append(0, covered);
    zeros_map(covered.len() as u64).solve(target)
}

/// A nonce whose seed (`codec::nonce_seed`) is `seed`: the low 32 bits solve for it, the high
/// ones are zero.
pub(crate) fn nonce_for(seed: u32) -> Option<u64> {
    let f = |low: u32| crc32c::crc32c(&u64::from(low).to_le_bytes());
    let linear = Matrix::of(|v| f(v) ^ f(0));
    let low = linear.solve(seed ^ f(0))?;
    Some(u64::from(low))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::nonce_seed;

    #[test]
    fn the_seed_of_a_record_is_recovered() {
        for (nonce, len) in [(1u64, 0usize), (0xdead_beef_0bad_f00d, 1), (42, 4133), (7, 70_000)] {
            let covered: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let crc = crc32c::crc32c_append(nonce_seed(nonce), &covered);
            let seed = seed_for(&covered, crc).unwrap();
            assert_eq!(seed, nonce_seed(nonce), "len {len}");
            let equivalent = nonce_for(seed).unwrap();
            assert_eq!(nonce_seed(equivalent), seed);
            assert_eq!(crc32c::crc32c_append(nonce_seed(equivalent), &covered), crc);
        }
    }

    #[test]
    fn a_damaged_record_gives_a_seed_another_record_refuses() {
        let nonce = 0x1234_5678_9abc_def0;
        let mut first = b"Subject: one\r\n\r\nbody".to_vec();
        let crc = crc32c::crc32c_append(nonce_seed(nonce), &first);
        first[3] ^= 1;
        let wrong = seed_for(&first, crc).unwrap();
        assert_ne!(wrong, nonce_seed(nonce));
        let second = b"Subject: two\r\n\r\nmore";
        let crc2 = crc32c::crc32c_append(nonce_seed(nonce), second);
        assert_ne!(crc32c::crc32c_append(wrong, second), crc2);
    }
}

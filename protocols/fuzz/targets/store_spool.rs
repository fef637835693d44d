//! Target `store_spool`: one edit of a store's `spool/NNNNNNNN.seg` file,
//! then open (recovery), reads, a write, a reopen and reconstruct. The input format and the
//! expectations are in `store_support.rs`.

use crate::store_support::{Kind, check};

/// The target.
pub fn target(data: &[u8]) {
    check(Kind::Spool, data);
}

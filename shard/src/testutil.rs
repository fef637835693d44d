//! Helpers for unit tests that need a glommio executor.

use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};

/// io_uring memory for test executors: small, since tests run in parallel and locked memory
/// is scarce.
const TEST_IO_MEMORY_BYTES: usize = 128 * 1024;

/// A fresh unpinned executor for one test.
pub(crate) fn executor() -> LocalExecutor {
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(TEST_IO_MEMORY_BYTES)
        .make()
        .expect("test executor (io_uring) starts")
}

//! The real disk (in progress).

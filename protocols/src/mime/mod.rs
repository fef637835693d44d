//! MIME analysis: ENVELOPE, BODYSTRUCTURE, sections, search (in progress).

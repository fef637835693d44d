//! Bounds on MIME analysis. Every message is analysed once at delivery, so these bound the work
//! and memory an adversarial message can cost, and the size of the cache blob stored with it.
//! Beyond a bound the message is still stored; only its reported structure is simplified
//! (see `CACHE-FORMAT.md`, "Truncation").

/// Deepest nesting of MIME entities (the message itself is depth 1; each multipart child and each
/// message/rfc822 encapsulation adds one). An entity at this depth is never a container: it is
/// reported as a `text/plain` leaf holding its whole body. Real mail rarely nests beyond 5;
/// 32 also bounds the recursion depth of the BODYSTRUCTURE writer.
pub const DEPTH_MAX: usize = 32;

/// Most MIME entities (parts plus encapsulated messages, the message itself included) in one
/// message. Beyond it the whole message is reported as one `text/plain` leaf. Bounds the part
/// table (16 bytes each) and the BODYSTRUCTURE text.
pub const PARTS_MAX: usize = 1000;

/// Largest message whose offsets the part table can hold: offsets and lengths are `u32` on disk.
/// Bytes beyond it are ignored by the analysis (the cache describes the first `u32::MAX` bytes).
pub const MESSAGE_BYTES_MAX: usize = u32::MAX as usize;

/// Most addresses reported in one ENVELOPE address list (group markers included). A header
/// with more is cut there: clients use the envelope for display, never for delivery.
pub const ENVELOPE_ADDRESSES_MAX: usize = 1000;

/// Most parameters kept from one Content-Type or Content-Disposition header.
pub const PARAMETERS_MAX: usize = 64;

/// Most language tags kept from one Content-Language header.
pub const LANGUAGES_MAX: usize = 32;

const _: () = assert!(PARTS_MAX <= u16::MAX as usize, "subtree sizes are stored as u16");
const _: () = assert!(DEPTH_MAX >= 2 && DEPTH_MAX <= PARTS_MAX);
const _: () = assert!(MESSAGE_BYTES_MAX <= u32::MAX as usize);

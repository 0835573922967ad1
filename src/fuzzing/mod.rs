//! Fuzz target bodies: the properties every parser and every pure state
//! machine must keep, for any input bytes.
//!
//! Owns one function per fuzz target, `fn(&[u8])`, that panics exactly when a
//! property is broken. The same function runs in three places:
//!
//! ```text
//!   fuzz/fuzz_targets/<t>.rs ──libFuzzer (cargo fuzz run <t>)──┐
//!   tests/fuzz_corpus.rs ──fuzz/corpus/<t>/* and fuzz/dict/*───┼──▶ postern::fuzzing::<t>(data)
//!   src/fuzzing/tests.rs ──proptest: random and built inputs───┘
//! ```
//!
//! so stable `cargo test` exercises every property over the committed seeds,
//! and a crash file found by the fuzzer becomes a regression test by being
//! copied into `fuzz/corpus/<t>/` (docs/fuzzing.md). [`TARGETS`] lists them;
//! a test checks that every entry has a fuzz target file and a corpus.
//!
//! The module is compiled always (it is small, needs no extra dependency,
//! and the binary never calls it), so neither tests nor the fuzz crate need a
//! feature flag.
//!
//! Model targets ([`session_model()`], [`ratelimit_model()`]) read their input as
//! a little program ([`Input`]): a few bytes of configuration, then
//! operations, each checked against a naive reference model that keeps
//! everything in plain vectors and recomputes answers the slow, obvious way
//! (redb's `fuzz_redb` pattern).
//!
//! Never: does I/O (the `multipart` target polls its future in place, no
//! runtime), reads the clock for decisions (model targets fix a base
//! `Instant` and advance it from the input), or leaves state between calls.

pub mod archive;
pub mod cookie;
pub mod escape;
pub mod forwarded;
pub mod maildir;
pub mod mbox;
pub mod multipart;
pub mod ratelimit_model;
pub mod record;
pub mod session_model;
pub mod sherpa;

#[cfg(test)]
mod tests;

pub use archive::archive;
pub use cookie::cookie;
pub use escape::query_escape;
pub use forwarded::forwarded;
pub use maildir::maildir;
pub use mbox::mbox;
pub use multipart::multipart;
pub use ratelimit_model::ratelimit_model;
pub use record::record_decode;
pub use session_model::session_model;
pub use sherpa::sherpa_call;

/// A fuzz target body: panics when a property does not hold for `data`.
pub type Target = fn(&[u8]);

/// Every fuzz target: the name of its file in `fuzz/fuzz_targets/`, its
/// corpus directory in `fuzz/corpus/` and its function.
pub const TARGETS: &[(&str, Target)] = &[
    ("cookie", cookie),
    ("query_escape", query_escape),
    ("sherpa_call", sherpa_call),
    ("record_decode", record_decode),
    ("session_model", session_model),
    ("ratelimit_model", ratelimit_model),
    ("forwarded", forwarded),
    ("mbox", mbox),
    ("maildir", maildir),
    ("archive", archive),
    ("multipart", multipart),
];

/// The target called `name`, if there is one.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Most operations one model run executes, so every input runs quickly.
pub const MAX_OPS: usize = 4096;

/// Reads fuzz input as a stream of small numbers; past the end every read
/// is `None`, so a program simply stops when its input does.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// The next byte.
    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    /// The next byte, or 0 past the end (for configuration read up front).
    pub fn u8_or_zero(&mut self) -> u8 {
        self.u8().unwrap_or(0)
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    /// Up to `n` bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

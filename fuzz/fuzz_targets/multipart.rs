//! A fuzz target. Every file in this directory is this same file: the
//! binary's name (the file name, via its `[[bin]]` entry in ../Cargo.toml)
//! selects the property function in `postern::fuzzing::TARGETS`. To add a
//! target, copy this file and see docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let name = env!("CARGO_BIN_NAME");
    let run =
        postern::fuzzing::target(name).expect("target registered in postern::fuzzing::TARGETS");
    run(data);
});

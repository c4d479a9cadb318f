//! Fuzz target `resp_parse`: the properties in `fuzz/properties.rs` (shared with
//! `tests/parsers_arbitrary.rs`), driven by libFuzzer.
#![no_main]

#[allow(dead_code)]
#[path = "../properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| properties::resp_parse(data));

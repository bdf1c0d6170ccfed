//! Fuzz target `import`: the property is `check_import` in tests/fuzz_checks/mod.rs, which
//! `tests/fuzz_corpus.rs` replays over the committed corpus in the normal suite.
#![no_main]

#[path = "../../tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_import(data));

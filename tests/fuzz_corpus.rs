//! Replays every fuzz target's committed corpus (`fuzz/corpus/<target>/`) and every input a
//! fuzzer found failing (`fuzz/regressions/<target>/`) through the target's property
//! (`tests/fuzz_checks/mod.rs`), so what the fuzzers learned stays checked by `cargo test`
//! without libFuzzer. A target without a corpus fails: the replay must not pass by reading
//! nothing.

mod fuzz_checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seen = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let data = std::fs::read(&path).expect("a corpus file");
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} fails its property",
                path.display()
            );
            seen += 1;
        }
    }
    assert!(
        seen > 0,
        "{target}: no corpus under fuzz/corpus/{target}: run the fuzzer (README \"Testing\")"
    );
    eprintln!("{target}: {seen} input(s) replayed");
}

#[test]
fn json_body() {
    replay("json_body", fuzz_checks::check_json_body);
}

#[test]
fn xml_body() {
    replay("xml_body", fuzz_checks::check_xml_body);
}

#[test]
fn list_splitter() {
    replay("list_splitter", fuzz_checks::check_list_splitter);
}

#[test]
fn record_variants() {
    replay("record_variants", fuzz_checks::check_record_variants);
}

#[test]
fn import() {
    replay("import", fuzz_checks::check_import);
}

#[test]
fn config() {
    replay("config", fuzz_checks::check_config);
}

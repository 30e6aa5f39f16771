//! Any text as the es-loader's exclusion CSV.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = loader::exclude::Exclusions::parse("exclude_log_patterns.csv", text);
    }
});

//! Any text as a user.ini over the built-in configuration: an error or a configuration, never
//! a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = loader::config::Config::with_user_file("user.ini", text);
    }
});

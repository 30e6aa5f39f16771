//! Any text as the `awslogs.data` of a CloudWatch Logs subscription event (base64 of gzip of
//! payload JSON), and any bytes as payload JSON, as the collector decodes them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shared::payload::parse_payloads(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = shared::payload::decode_data(text, 1 << 20);
    }
    let _ = shared::payload::gunzip(data, 1 << 20);
});

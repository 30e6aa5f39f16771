//! Any text as an SQS message body (S3 notifications, in SNS or EventBridge envelopes) and as
//! a directly invoked event.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = loader::lambda::events::parse_body(text);
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            let _ = loader::lambda::events::parse_value(&value);
        }
    }
});

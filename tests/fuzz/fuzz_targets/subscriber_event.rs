//! Any JSON as an event of the subscriber (CloudTrail CreateLogGroup events through
//! EventBridge, scheduled reconciliations).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = subscriber::events::classify(&value);
    }
});

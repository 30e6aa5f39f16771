//! Any bytes as an object of any built-in type: decompression, splitting, every normalizer,
//! enrichment-free document writing. The first byte chooses the type (its key from `loader
//! bench`), the rest is the object. Nothing may panic, and the counts must add up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::config::Config;
use loader::pipeline::{Pipeline, Stats};
use std::sync::OnceLock;

fn setup() -> &'static (Pipeline, Vec<String>) {
    static SETUP: OnceLock<(Pipeline, Vec<String>)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let keys = loader::bench::types()
            .iter()
            .map(|t| loader::bench::generate(t, 0).0)
            .filter(|k| !k.is_empty())
            .collect();
        (
            Pipeline::new(Config::builtin().expect("built-in config")),
            keys,
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, object)) = data.split_first() else {
        return;
    };
    let (pipeline, keys) = setup();
    let key = &keys[usize::from(choice) % keys.len()];
    let mut stats = Stats::default();
    let mut documents = 0u64;
    let mut buf = Vec::new();
    pipeline.load_object(
        key,
        key,
        object,
        chrono::Utc::now(),
        &mut stats,
        &mut |doc| {
            documents += 1;
            buf.clear();
            doc.write_bulk(&mut buf).expect("bulk lines are written");
        },
    );
    for t in stats.per_type.values() {
        assert!(t.documents <= documents);
    }
});

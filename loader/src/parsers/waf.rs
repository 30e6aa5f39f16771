//! waf (in progress).

//! cloudtrail (in progress).

//! cloudwatch (in progress).

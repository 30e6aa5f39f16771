//! securityhub (in progress).

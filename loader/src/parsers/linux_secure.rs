//! linux_secure (in progress).

//! subscriber library.

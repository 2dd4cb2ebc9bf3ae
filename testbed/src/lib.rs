//! Test hosts for hoist (see README.md).

//! A waterfall of three nodes.

//! Faults of the send path.

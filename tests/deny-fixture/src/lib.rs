//! Nothing: this crate exists for its dependency on a banned crate.

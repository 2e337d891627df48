//! A stand-in for the banned crate of the same name.

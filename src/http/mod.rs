//! The HTTP surface: the only module that knows hyper.

pub mod rules;

//! The condition language: grammar, located syntax tree, parser and canonical printer.
//!
//! This layer knows nothing about policies, names or types; the checker gives meaning to
//! the tree it produces.

pub mod ast;
pub mod err;
pub mod parse;

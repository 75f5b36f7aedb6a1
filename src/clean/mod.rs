//! The cleaning rules as plain Rust functions. SQL reaches them through the
//! scalar UDFs in [`crate::engine`]; nothing else should re-implement them.

pub mod lang;
pub mod text;
mod trigrams;
pub mod url;

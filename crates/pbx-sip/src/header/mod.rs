//! Header fields: names and the ordered, zero-copy header list.

mod map;
mod name;

#[cfg(test)]
pub(crate) use map::field_size;
pub use map::{Headers, Iter};
pub use name::HeaderName;

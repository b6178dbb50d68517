//! Header fields: names and the ordered, zero-copy header list.

mod map;
mod name;

pub use map::{Headers, Iter};
pub use name::HeaderName;

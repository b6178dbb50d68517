//! Request and response bodies of the API (with their OpenAPI schemas).
//!
//! Requests deserialize straight into validated domain values, so a bad value is refused
//! while parsing with the field named; unknown fields are refused too.

mod calls;
mod requests;
mod views;

pub use calls::*;
pub use requests::*;
pub use views::*;

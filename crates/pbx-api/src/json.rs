//! The JSON body extractor: like `axum::Json`, but a body that does not deserialize is
//! answered with the API's error envelope naming the field at fault.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body of type `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let essence = value.split(';').next().unwrap_or_default().trim();
                essence.eq_ignore_ascii_case("application/json")
                    || (essence.starts_with("application/") && essence.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::MalformedJson {
                message: rejection.body_text(),
            })?;
        decode(&bytes).map(Self)
    }
}

/// Deserializes `bytes`, naming the failing field in the error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        classify(&path, error.into_inner())
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::MalformedJson {
            message: error.to_string(),
        })?;
    Ok(value)
}

fn classify(path: &str, error: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    if !matches!(error.classify(), Category::Data) {
        return ApiError::MalformedJson {
            message: error.to_string(),
        };
    }
    // serde_json appends " at line L column C"; the field name says more to an API client.
    let full = error.to_string();
    let message = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(head, _)| head)
        .to_owned();
    let join = |name: &str| {
        if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = quoted_after(&message, "missing field `") {
        return ApiError::MissingField { field: join(name) };
    }
    if let Some(name) = quoted_after(&message, "unknown field `") {
        // serde_path_to_error has already stepped into the unknown key.
        let field = if path == name || path.ends_with(&format!(".{name}")) {
            path.to_owned()
        } else {
            join(name)
        };
        return ApiError::UnknownField { field };
    }
    let field = if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    ApiError::InvalidField { field, message }
}

/// The text between `prefix` and the next backtick.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.split_once(prefix)?.1;
    rest.split_once('`').map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use pbx_domain::Extension;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // the fields are only deserialized
    struct Body {
        extension: Extension,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // the fields are only deserialized
    struct Inner {
        count: u8,
    }

    #[test]
    fn errors_name_the_field() {
        let field = |text: &str| decode::<Body>(text.as_bytes()).unwrap_err();
        let invalid = field(r#"{"extension": "0x"}"#);
        assert_eq!(invalid.code(), "invalid_field");
        assert_eq!(invalid.field().as_deref(), Some("extension"));
        assert!(
            invalid.to_string().contains("invalid extension"),
            "{invalid}"
        );
        let missing = field("{}");
        assert_eq!(missing.code(), "missing_field");
        assert_eq!(missing.field().as_deref(), Some("extension"));
        let unknown = field(r#"{"extension": "201", "bogus": 1}"#);
        assert_eq!(unknown.code(), "unknown_field");
        assert_eq!(unknown.field().as_deref(), Some("bogus"));
        let nested = field(r#"{"extension": "201", "inner": {"count": 300}}"#);
        assert_eq!(nested.field().as_deref(), Some("inner.count"));
        let nested_missing = field(r#"{"extension": "201", "inner": {}}"#);
        assert_eq!(nested_missing.field().as_deref(), Some("inner.count"));
        assert_eq!(field("{").code(), "malformed_json");
        assert_eq!(field(r#"{"extension": "201"} x"#).code(), "malformed_json");
        assert_eq!(field("[]").field().as_deref(), Some("body"));
    }
}

//! Salesforce's REST error answers: an HTTP status and a JSON array of
//! `{"message","errorCode","fields"}` (docs/salesforce-facts.md §3).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value as Json, json};

/// One error as Salesforce reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status of the answer.
    pub status: u16,
    /// `errorCode`, e.g. `REQUIRED_FIELD_MISSING`.
    pub code: String,
    /// `message`.
    pub message: String,
    /// `fields`, present on field errors only (often absent in real bodies).
    pub fields: Option<Vec<String>>,
    /// Extra members (e.g. `duplicateResult`).
    pub extra: Option<Box<(String, Json)>>,
}

impl ApiError {
    /// An error without `fields`.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.to_owned(), message: message.into(), fields: None, extra: None }
    }

    /// An error naming `fields`.
    pub fn with_fields(status: u16, code: &str, message: impl Into<String>, fields: &[&str]) -> Self {
        Self { fields: Some(fields.iter().map(|f| (*f).to_owned()).collect()), ..Self::new(status, code, message) }
    }

    /// 401 for a missing, expired or revoked session.
    pub fn invalid_session() -> Self {
        Self::new(401, "INVALID_SESSION_ID", "Session expired or invalid")
    }

    /// 404 for an unknown resource.
    pub fn not_found() -> Self {
        Self::new(404, "NOT_FOUND", "The requested resource does not exist")
    }

    /// The error as one element of a REST error array.
    pub fn to_json(&self) -> Json {
        let mut body = json!({ "message": self.message, "errorCode": self.code });
        if let Some(fields) = &self.fields {
            body["fields"] = json!(fields);
        }
        if let Some(extra) = &self.extra {
            let (key, value) = extra.as_ref();
            body[key] = value.clone();
        }
        body
    }

    /// The error as an sObject Collections item error (`statusCode`, not
    /// `errorCode`, and `fields` always present).
    pub fn to_collection_json(&self) -> Json {
        json!({ "statusCode": self.code, "message": self.message, "fields": self.fields.clone().unwrap_or_default() })
    }
}

/// A JSON answer with Salesforce's content type.
pub fn json_response(status: u16, body: &Json) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    response
}

/// A JSON answer already encoded.
pub fn json_bytes_response(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status, &json!([self.to_json()]));
        if self.status == 401 {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
        }
        response
    }
}

/// Several errors of one record (a failed create or update).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiErrors(pub Vec<ApiError>);

impl IntoResponse for ApiErrors {
    fn into_response(self) -> Response {
        let status = self.0.first().map_or(400, |e| e.status);
        json_response(status, &Json::Array(self.0.iter().map(ApiError::to_json).collect()))
    }
}

impl From<ApiError> for ApiErrors {
    fn from(e: ApiError) -> Self {
        Self(vec![e])
    }
}

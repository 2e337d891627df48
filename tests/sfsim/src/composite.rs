//! `/composite/sobjects` (sObject Collections, at most 200 records, one API
//! call) and `/composite` (at most 25 subrequests with `@{ref.field}`
//! references, one API call), with their all-or-none rollbacks.

use axum::{
    Extension, Json,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value as J, json};

use crate::{
    api::{Ctx, query_page, read_json},
    error::{ApiError, json_response},
    schema,
    store::write,
    value::Record,
    write::{WriteMode, create_in},
};

const MAX_COLLECTION: usize = 200;
const MAX_SUBREQUESTS: usize = 25;
const MAX_QUERIES_OR_COLLECTIONS: usize = 5;

fn rolled_back() -> J {
    json!({ "success": false, "errors": [{
        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
        "fields": []
    }]})
}

/// `POST /composite/sobjects`: creates each record; answers 200 with one
/// result per record, in order, even when some fail.
pub async fn collection_create(Extension(ctx): Extension<Ctx>, headers: HeaderMap, body: Option<Json<J>>) -> Response {
    let Some(Json(body)) = body else {
        return ApiError::new(400, "JSON_PARSER_ERROR", "The request body is not valid JSON").into_response();
    };
    let Some(records) = body.get("records").and_then(J::as_array) else {
        return ApiError::new(400, "INVALID_FIELD", "No records specified").into_response();
    };
    if records.len() > MAX_COLLECTION {
        return ApiError::new(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
        .into_response();
    }
    let all_or_none = body.get("allOrNone").and_then(J::as_bool).unwrap_or(false);
    let mode = WriteMode { seeding: false, skip_duplicate_rules: crate::api::allow_save(&headers) };
    let results = collection_results(&ctx, records, all_or_none, mode);
    // The whole call is one write: committed, and perhaps never answered.
    crate::api::maybe_hang(&ctx.org).await;
    json_response(200, &J::Array(results))
}

/// Creates each record of a Collections call under one lock; one result
/// per record, in order.
fn collection_results(ctx: &Ctx, records: &[J], all_or_none: bool, mode: WriteMode) -> Vec<J> {
    let mut data = write(&ctx.org.data);
    let mut results = Vec::with_capacity(records.len());
    let mut created: Vec<String> = Vec::new();
    let mut failed = false;
    for item in records {
        let outcome = (|| {
            let fields = item
                .as_object()
                .ok_or_else(|| vec![ApiError::new(400, "JSON_PARSER_ERROR", "a record must be an object")])?;
            let type_name =
                fields.get("attributes").and_then(|a| a.get("type")).and_then(J::as_str).ok_or_else(|| {
                    vec![ApiError::new(400, "INVALID_TYPE", "sObject type must be specified in attributes")]
                })?;
            let object = schema::object(type_name).ok_or_else(|| {
                vec![ApiError::new(400, "INVALID_TYPE", format!("sObject type '{type_name}' is not supported."))]
            })?;
            if fields.keys().any(|k| k.eq_ignore_ascii_case("Id")) {
                return Err(vec![ApiError::new(400, "INVALID_FIELD", "cannot specify Id in an insert call")]);
            }
            if let Some(e) = crate::api::lock_fault(&ctx.org, &ctx.user_id) {
                return Err(vec![e]);
            }
            create_in(&ctx.sim, &ctx.org, &mut data, object, fields, &ctx.user_id, &ctx.version, mode)
        })();
        match outcome {
            Ok(id) => {
                created.push(id.clone());
                results.push(json!({ "id": id, "success": true, "errors": [] }));
            }
            Err(errors) => {
                failed = true;
                results.push(json!({ "success": false, "errors": errors.iter().map(ApiError::to_collection_json).collect::<Vec<_>>() }));
            }
        }
    }
    if all_or_none && failed {
        for id in &created {
            remove(&mut data, id);
        }
        for r in &mut results {
            if r["success"] == J::Bool(true) {
                *r = rolled_back();
            }
        }
    }
    results
}

fn remove(data: &mut crate::store::OrgData, id: &str) {
    if let Some(record) = data.records.remove(id)
        && let Some(list) = data.by_object.get_mut(record.object.name)
        && let Some(pos) = list.iter().rposition(|x| x == id)
    {
        list.remove(pos);
    }
}

/// `POST /composite`.
pub async fn composite(Extension(ctx): Extension<Ctx>, headers: HeaderMap, body: Option<Json<J>>) -> Response {
    let _ = headers;
    let Some(Json(body)) = body else {
        return ApiError::new(400, "JSON_PARSER_ERROR", "The request body is not valid JSON").into_response();
    };
    let Some(requests) = body.get("compositeRequest").and_then(J::as_array) else {
        return ApiError::new(400, "INVALID_FIELD", "compositeRequest is required").into_response();
    };
    if requests.len() > MAX_SUBREQUESTS {
        return ApiError::new(
            400,
            "LIMIT_EXCEEDED",
            "Limit Exceeded: a composite request can have at most 25 subrequests",
        )
        .into_response();
    }
    // docs/salesforce-facts.md §4: no more than 5 of the subrequests may be queries or
    // Collections calls.
    let heavy = requests
        .iter()
        .filter(|r| {
            let url = r.get("url").and_then(J::as_str).unwrap_or_default();
            let path = url.split_once('?').map_or(url, |(p, _)| p).trim_end_matches('/');
            path.ends_with("/query") || path.ends_with("/queryAll") || path.ends_with("/composite/sobjects")
        })
        .count();
    if heavy > MAX_QUERIES_OR_COLLECTIONS {
        return ApiError::new(
            400,
            "LIMIT_EXCEEDED",
            "Limit Exceeded: a composite request can have at most 5 query or sObject Collections subrequests",
        )
        .into_response();
    }
    let all_or_none = body.get("allOrNone").and_then(J::as_bool).unwrap_or(false);
    let mut answers: Vec<J> = Vec::new();
    let mut by_ref: Map<String, J> = Map::new();
    // What to undo for all-or-none: created ids and records as they were.
    let mut undo: Vec<Undo> = Vec::new();
    let mut failed_at = None;
    for (i, request) in requests.iter().enumerate() {
        let reference = request.get("referenceId").and_then(J::as_str).unwrap_or_default().to_owned();
        let method = request.get("method").and_then(J::as_str).unwrap_or("GET").to_ascii_uppercase();
        let url =
            substitute(&J::String(request.get("url").and_then(J::as_str).unwrap_or_default().to_owned()), &by_ref);
        let sub_body = request.get("body").map(|b| substitute(b, &by_ref)).transpose();
        let (status, answer) = match (url, sub_body) {
            (Ok(J::String(url)), Ok(b)) => execute(&ctx, &method, &url, b.as_ref(), &mut undo),
            (Err(missing), _) | (_, Err(missing)) => (
                400,
                json!([{ "errorCode": "INVALID_FIELD", "message": format!("Invalid reference specified. No value for {missing} found in {reference}. Provided referenceId ('{missing}') must start with a letter or a number, and it can contain only letters, numbers and underscores ('_').") }]),
            ),
            _ => (400, json!([{ "errorCode": "INVALID_FIELD", "message": "url must be a string" }])),
        };
        by_ref.insert(reference.clone(), answer.clone());
        answers.push(json!({ "body": answer, "httpHeaders": {}, "httpStatusCode": status, "referenceId": reference }));
        if status >= 400 && all_or_none {
            failed_at = Some(i);
            break;
        }
    }
    if let Some(failed) = failed_at {
        let mut data = write(&ctx.org.data);
        for step in undo.into_iter().rev() {
            match step {
                Undo::Created(id) => remove(&mut data, &id),
                Undo::Restore(record) => {
                    data.records.insert(record.id().to_owned(), record);
                }
            }
        }
        let halted = json!([{ "errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back since another operation in the same transaction failed." }]);
        for (i, answer) in answers.iter_mut().enumerate() {
            if i != failed {
                answer["body"] = halted.clone();
                answer["httpStatusCode"] = json!(400);
            }
        }
        for request in requests.iter().skip(failed + 1) {
            let reference = request.get("referenceId").and_then(J::as_str).unwrap_or_default();
            answers.push(json!({ "body": halted, "httpHeaders": {}, "httpStatusCode": 400, "referenceId": reference }));
        }
    }
    json_response(200, &json!({ "compositeResponse": answers }))
}

enum Undo {
    Created(String),
    Restore(Record),
}

/// Replaces `@{ref.path}` in strings with values from earlier answers;
/// `Err(reference)` when one cannot be resolved.
fn substitute(value: &J, by_ref: &Map<String, J>) -> Result<J, String> {
    match value {
        J::String(s) => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("@{") {
                out.push_str(&rest[..start]);
                let Some(end) = rest[start..].find('}') else { break };
                let path = &rest[start + 2..start + end];
                out.push_str(&resolve(path, by_ref).ok_or_else(|| path.to_owned())?);
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            Ok(J::String(out))
        }
        J::Array(items) => items.iter().map(|v| substitute(v, by_ref)).collect::<Result<Vec<_>, _>>().map(J::Array),
        J::Object(map) => map
            .iter()
            .map(|(k, v)| substitute(v, by_ref).map(|v| (k.clone(), v)))
            .collect::<Result<Map<_, _>, _>>()
            .map(J::Object),
        other => Ok(other.clone()),
    }
}

/// `NewContact.id`, `q.records[0].Id`.
fn resolve(path: &str, by_ref: &Map<String, J>) -> Option<String> {
    let mut parts = path.split('.');
    let mut current = by_ref.get(parts.next()?)?;
    for part in parts {
        let (name, index) = match part.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        current = current.get(name)?;
        if let Some(i) = index {
            current = current.get(i)?;
        }
    }
    match current {
        J::String(s) => Some(s.clone()),
        J::Null => None,
        other => Some(other.to_string()),
    }
}

/// One subrequest: record create, read, update, delete, or a query.
fn execute(ctx: &Ctx, method: &str, url: &str, body: Option<&J>, undo: &mut Vec<Undo>) -> (u16, J) {
    let err = |e: ApiError| (e.status, J::Array(vec![e.to_json()]));
    let errs =
        |e: Vec<ApiError>| (e.first().map_or(400, |x| x.status), J::Array(e.iter().map(ApiError::to_json).collect()));
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // services/data/vXX.X/<rest>
    let rest = match segments.as_slice() {
        ["services", "data", _version, rest @ ..] => rest,
        _ => return err(ApiError::not_found()),
    };
    match (method, rest) {
        ("GET", ["query"]) => {
            let q = query.split('&').find_map(|kv| kv.strip_prefix("q=")).map(decode);
            match query_page(ctx, 2000, q.as_deref(), false) {
                Ok(page) => (200, serde_json::from_slice(&page).unwrap_or(J::Null)),
                Err(e) => err(e),
            }
        }
        ("POST", ["sobjects", object]) => {
            let Some(schema) = schema::object(object) else { return err(ApiError::not_found()) };
            let Some(fields) = body.and_then(J::as_object) else {
                return err(ApiError::new(400, "JSON_PARSER_ERROR", "a body is required"));
            };
            let mut data = write(&ctx.org.data);
            match create_in(
                &ctx.sim,
                &ctx.org,
                &mut data,
                schema,
                fields,
                &ctx.user_id,
                &ctx.version,
                WriteMode::default(),
            ) {
                Ok(id) => {
                    undo.push(Undo::Created(id.clone()));
                    (201, json!({ "id": id, "success": true, "errors": [], "warnings": [] }))
                }
                Err(e) => errs(e),
            }
        }
        ("GET", ["sobjects", object, id]) => match read_json(ctx, object, id, None) {
            Ok(record) => (200, record),
            Err(e) => err(e),
        },
        ("PATCH", ["sobjects", object, id]) => {
            let Some(schema) = schema::object(object) else { return err(ApiError::not_found()) };
            let Some(fields) = body.and_then(J::as_object) else {
                return err(ApiError::new(400, "JSON_PARSER_ERROR", "a body is required"));
            };
            let id18 = crate::ids::to_18(id).unwrap_or_default();
            if let Some(before) = crate::store::read(&ctx.org.data).records.get(&id18).cloned() {
                undo.push(Undo::Restore(before));
            }
            match crate::write::update(&ctx.org, schema, &id18, fields, &ctx.user_id) {
                Ok(()) => (204, J::Null),
                Err(e) => errs(e),
            }
        }
        ("DELETE", ["sobjects", object, id]) => {
            let Some(schema) = schema::object(object) else { return err(ApiError::not_found()) };
            let id18 = crate::ids::to_18(id).unwrap_or_default();
            if let Some(before) = crate::store::read(&ctx.org.data).records.get(&id18).cloned() {
                undo.push(Undo::Restore(before));
            }
            match crate::write::delete(&ctx.org, schema, &id18) {
                Ok(()) => (204, J::Null),
                Err(e) => err(e),
            }
        }
        _ => err(ApiError::not_found()),
    }
}

/// Percent-decoding of a query-string value (`+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

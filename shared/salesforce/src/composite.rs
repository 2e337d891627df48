//! Several SOQL queries for the price of one API call: the Composite
//! resource (docs/salesforce-facts.md §4). A `POST …/composite` carries at most 25
//! subrequests, of which at most 5 may be queries or Collections calls, and
//! the org counts the whole request as **one** call, where the same queries
//! one by one cost one each.
//!
//! The writer resolves a whole batch with a query per object and stage;
//! sent together they cost one call instead of three to six, and wait one
//! round trip instead of several.
//!
//! Each subrequest answers on its own (`allOrNone: false`): a query that
//! fails is an [`ApiError`] in its place of [`Queried::results`], judged by
//! [`ApiError::retry`] like a call of its own, and the others still answer.
//! A page that is not the last is followed with [`Client::query_more`], one
//! call per page, as for a query made alone.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    client::{Client, PageBody, QueryPage, record_call},
    error::{ApiError, Error},
    limits::ApiUsage,
};

/// The most queries one Composite call may carry (docs/salesforce-facts.md §4: at most
/// five of its subrequests may be queries or Collections calls).
pub const MAX_QUERIES: usize = 5;

/// The answers to the queries of one Composite call, in the order asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Queried<T> {
    /// Each query's first page, or why it failed.
    pub results: Vec<Result<QueryPage<T>, ApiError>>,
    /// The allowance the answer reported.
    pub usage: Option<ApiUsage>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CompositeRequest {
    all_or_none: bool,
    composite_request: Vec<Subrequest>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Subrequest {
    method: &'static str,
    url: String,
    reference_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompositeAnswer {
    composite_response: Vec<SubAnswer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubAnswer {
    #[serde(default)]
    body: serde_json::Value,
    http_status_code: u16,
    reference_id: String,
}

impl Client {
    /// Runs up to [`MAX_QUERIES`] SOQL queries in one API call: `POST
    /// {instance_url}/services/data/{version}/composite` with one `GET
    /// …/query?q=` subrequest per query. [`Queried::results`] holds each
    /// query's first page (rows as `T`, as [`Client::query`] gives them) or
    /// its error, in the order of `soqls`. No call is made for none.
    ///
    /// # Errors
    /// [`Error::InvalidInput`], without a call, for more than
    /// [`MAX_QUERIES`]; otherwise the call's [`Error`] when the whole call
    /// failed ([`Error::retry`] says what to do). [`Error::Decode`] when the
    /// answer does not give one result per query.
    pub async fn queries<T: DeserializeOwned>(&self, soqls: &[String]) -> Result<Queried<T>, Error> {
        const ROUTE: &str = "composite_query";
        if soqls.len() > MAX_QUERIES {
            let error = Error::InvalidInput(format!(
                "a Composite call takes at most {MAX_QUERIES} queries, not {}",
                soqls.len()
            ));
            record_call(self.service(), ROUTE, error.label(), Duration::ZERO);
            return Err(error);
        }
        if soqls.is_empty() {
            return Ok(Queried { results: Vec::new(), usage: None });
        }
        let body = CompositeRequest {
            all_or_none: false,
            composite_request: soqls
                .iter()
                .enumerate()
                .map(|(i, soql)| Subrequest {
                    method: "GET",
                    url: query_path(self.api_version(), soql),
                    reference_id: format!("q{i}"),
                })
                .collect(),
        };
        let url = format!("{}/services/data/{}/composite", self.instance_url(), self.api_version());
        let started = Instant::now();
        let result = self.call(self.http().post(url).timeout(crate::client::QUERY_TIMEOUT).json(&body)).await.and_then(
            |(answer, usage)| Ok(Queried { results: read_answers(answer.as_ref(), soqls.len(), usage)?, usage }),
        );
        let elapsed = started.elapsed();
        match &result {
            Ok(queried) => {
                record_call(self.service(), ROUTE, "ok", elapsed);
                tracing::debug!(
                    operation = ROUTE,
                    queries = soqls.len(),
                    failed = queried.results.iter().filter(|r| r.is_err()).count(),
                    ?elapsed,
                    "Salesforce answered"
                );
            }
            Err(e) => {
                record_call(self.service(), ROUTE, e.label(), elapsed);
                tracing::debug!(operation = ROUTE, error = %e, ?elapsed, "Salesforce call failed");
            }
        }
        result
    }
}

/// `/services/data/{version}/query?q=<soql>`, the query form-encoded (so a
/// `+` in a literal travels as `%2B`, a space as `+`).
fn query_path(api_version: &str, soql: &str) -> String {
    let encoded: String = reqwest::Url::parse_with_params("https://composite.invalid/", &[("q", soql)])
        .ok()
        .and_then(|url| url.query().map(str::to_owned))
        .unwrap_or_default();
    format!("/services/data/{api_version}/query?{encoded}")
}

/// One result per query, matched by `referenceId` (`q<i>`).
fn read_answers<T: DeserializeOwned>(
    answer: &[u8],
    expected: usize,
    usage: Option<ApiUsage>,
) -> Result<Vec<Result<QueryPage<T>, ApiError>>, Error> {
    let answer: CompositeAnswer = serde_json::from_slice(answer).map_err(|e| Error::Decode(e.to_string()))?;
    let mut results: Vec<Option<Result<QueryPage<T>, ApiError>>> = (0..expected).map(|_| None).collect();
    for sub in answer.composite_response {
        let slot = sub
            .reference_id
            .strip_prefix('q')
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| results.get_mut(i))
            .ok_or_else(|| Error::Decode(format!("an answer for a query not asked: {:?}", sub.reference_id)))?;
        *slot = Some(if (200..300).contains(&sub.http_status_code) {
            let page: PageBody<T> = serde_json::from_value(sub.body).map_err(|e| Error::Decode(e.to_string()))?;
            Ok(page.with_usage(usage))
        } else {
            let body = serde_json::to_vec(&sub.body).unwrap_or_default();
            Err(ApiError::from_body(sub.http_status_code, &body, usage))
        });
    }
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.ok_or_else(|| Error::Decode(format!("no answer for query {i}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_travels_form_encoded_in_its_subrequest_url() {
        assert_eq!(
            query_path("v61.0", "SELECT Id FROM Lead WHERE Phone IN ('+81 3-1234', 'a&b=c')"),
            "/services/data/v61.0/query?q=SELECT+Id+FROM+Lead+WHERE+Phone+IN+%28%27%2B81+3-1234%27%2C+%27a%26b%3Dc%27%29"
        );
    }

    #[test]
    fn each_query_gets_its_own_page_or_error_in_the_order_asked() {
        // Shapes as docs/salesforce-facts.md §4 records them: a failed subrequest's body
        // is an error array with its own status.
        let answer = br#"{"compositeResponse":[
            {"body":[{"errorCode":"INVALID_FIELD","message":"No such column 'Fax' on entity 'Lead'."}],
             "httpHeaders":{},"httpStatusCode":400,"referenceId":"q1"},
            {"body":{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Lead"},"Id":"00Q5j00000ABCdeEAH"}]},
             "httpHeaders":{},"httpStatusCode":200,"referenceId":"q0"}]}"#;
        let results = read_answers::<serde_json::Value>(answer, 2, None).expect("readable");
        let page = results[0].as_ref().expect("q0 answered");
        assert_eq!(page.records[0]["Id"], "00Q5j00000ABCdeEAH");
        assert!(page.done);
        let error = results[1].as_ref().expect_err("q1 failed");
        assert_eq!((error.status, error.code.as_str()), (400, "INVALID_FIELD"));
    }

    #[test]
    fn an_answer_missing_a_query_or_naming_another_is_not_read() {
        let one = br#"{"compositeResponse":[{"body":{"totalSize":0,"done":true,"records":[]},"httpStatusCode":200,"referenceId":"q0"}]}"#;
        assert!(matches!(read_answers::<serde_json::Value>(one, 2, None), Err(Error::Decode(_))));
        let other = br#"{"compositeResponse":[{"body":{"totalSize":0,"done":true,"records":[]},"httpStatusCode":200,"referenceId":"x"}]}"#;
        assert!(matches!(read_answers::<serde_json::Value>(other, 1, None), Err(Error::Decode(_))));
    }
}

//! sfsim's control API, as `assist` reads it: an org's records
//! (`GET /sfsim/orgs/{org}/records/{object}`, every field, deleted ones
//! included), and the one-line view of a Task.

use std::{collections::HashMap, time::Duration};

use anyhow::Context as _;
use serde_json::Value;

/// One org of a running sfsim.
pub struct Sfsim {
    http: reqwest::Client,
    base: String,
    org: String,
}

impl Sfsim {
    /// `base` is sfsim's address (`http://127.0.0.1:8090`), `org` an org id.
    pub fn new(base: &str, org: &str) -> anyhow::Result<Self> {
        if org.is_empty() || !org.chars().all(|c| c.is_ascii_alphanumeric()) {
            anyhow::bail!("--org must be an sfsim org id (letters and digits), not {org:?}");
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), org: org.to_owned() })
    }

    /// Where the records of `object` are listed.
    pub fn records_url(&self, object: &str) -> String {
        format!("{}/sfsim/orgs/{}/records/{object}", self.base, self.org)
    }

    /// Every record of `object`.
    pub async fn records(&self, object: &str) -> anyhow::Result<Vec<Value>> {
        let url = self.records_url(object);
        let response =
            self.http.get(&url).send().await.with_context(|| format!("cannot reach sfsim at {}", self.base))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("sfsim answered {status} to GET {url}: {body}");
        }
        response.json().await.with_context(|| format!("sfsim's answer to GET {url} is not a list of records"))
    }

    /// Record id → name over the objects a Task points at (WhoId, WhatId,
    /// OwnerId); what cannot be read is left out.
    pub async fn names(&self) -> HashMap<String, String> {
        let mut names = HashMap::new();
        for object in ["Lead", "Contact", "Account", "User"] {
            if let Ok(records) = self.records(object).await {
                for r in &records {
                    if let (Some(id), Some(name)) = (text(r, "Id"), text(r, "Name")) {
                        names.insert(id, name);
                    }
                }
            }
        }
        names
    }
}

/// A text field, trimmed; `None` when null or blank.
pub fn text(record: &Value, field: &str) -> Option<String> {
    record.get(field).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A checkbox field (`IsDeleted`, `IsConverted`); missing is false.
pub fn is_true(record: &Value, field: &str) -> bool {
    record.get(field).and_then(Value::as_bool).unwrap_or(false)
}

/// The live Task whose `CallObject` is `event_id` (the writer's idempotency key).
pub fn task_for<'a>(tasks: &'a [Value], event_id: &str) -> Option<&'a Value> {
    tasks.iter().find(|t| !is_true(t, "IsDeleted") && t.get("CallObject").and_then(Value::as_str) == Some(event_id))
}

/// One line for a Task: the event, WhoId/WhatId, OwnerId (with names where
/// `names` has them), Subject, ActivityDate and the Description's first 40
/// characters, line breaks shown as `⏎`.
pub fn task_line(event_id: &str, task: &Value, names: &HashMap<String, String>) -> String {
    let id = |field: &str| match text(task, field) {
        Some(id) => match names.get(&id) {
            Some(name) => format!("{id} ({name})"),
            None => id,
        },
        None => "-".to_owned(),
    };
    let description = text(task, "Description").unwrap_or_default();
    let mut head: String = description.chars().take(40).collect::<String>().replace('\n', "⏎");
    if description.chars().count() > 40 {
        head.push('…');
    }
    format!(
        "{event_id} → Task {}: WhoId {} WhatId {} OwnerId {} | Subject {:?} | ActivityDate {} | Description \"{head}\"",
        text(task, "Id").unwrap_or_else(|| "-".to_owned()),
        id("WhoId"),
        id("WhatId"),
        id("OwnerId"),
        text(task, "Subject").unwrap_or_default(),
        text(task, "ActivityDate").unwrap_or_else(|| "-".to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::{task_for, task_line};

    #[test]
    fn a_task_reads_as_its_people_subject_date_and_description_head() {
        let task = json!({"Id": "00T000000000001AAA", "CallObject": "as_x_known", "IsDeleted": false,
            "WhoId": "003000000000002AAA", "WhatId": "001000000000001AAA", "OwnerId": "005000000000001AAA",
            "Subject": "Front Agent 通話アシスト: 鈴木 一郎", "ActivityDate": "2026-12-03",
            "Description": "請求書の送付先変更の依頼。\n\nお客様: すみません、請求書の送付先を変更したいのですが。"});
        let names: HashMap<String, String> = [("003000000000002AAA", "鈴木 一郎"), ("005000000000001AAA", "山田 太郎")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(
            task_line("as_x_known", &task, &names),
            "as_x_known → Task 00T000000000001AAA: WhoId 003000000000002AAA (鈴木 一郎) WhatId 001000000000001AAA \
             OwnerId 005000000000001AAA (山田 太郎) | Subject \"Front Agent 通話アシスト: 鈴木 一郎\" | \
             ActivityDate 2026-12-03 | Description \"請求書の送付先変更の依頼。⏎⏎お客様: すみません、請求書の送付先を変更したいの…\""
        );
    }

    #[test]
    fn a_task_without_account_or_description_shows_dashes() {
        let task = json!({"Id": "00T000000000001AAA", "WhoId": "00Q000000000001EAA", "WhatId": null,
            "OwnerId": "005000000000001AAA", "Subject": "Front Agent 通話アシスト: 090-1234-5678",
            "ActivityDate": null, "Description": "短い要約"});
        assert_eq!(
            task_line("as_x_new", &task, &HashMap::new()),
            "as_x_new → Task 00T000000000001AAA: WhoId 00Q000000000001EAA WhatId - OwnerId 005000000000001AAA | \
             Subject \"Front Agent 通話アシスト: 090-1234-5678\" | ActivityDate - | Description \"短い要約\""
        );
    }

    #[test]
    fn a_task_is_found_by_its_call_object_unless_deleted() {
        let tasks = vec![
            json!({"Id": "00T000000000001AAA", "CallObject": "as_a", "IsDeleted": true}),
            json!({"Id": "00T000000000002AAA", "CallObject": "as_b", "IsDeleted": false}),
        ];
        assert!(task_for(&tasks, "as_a").is_none());
        assert_eq!(task_for(&tasks, "as_b").map(|t| t["Id"].clone()), Some(json!("00T000000000002AAA")));
        assert!(task_for(&tasks, "as_c").is_none());
    }
}

//! One line per message the connector publishes to `salesforce.sync`:
//! what it is and the fields a person looks at.

use serde_json::Value;

/// One line for a message: what it is and the fields a person looks at.
pub fn describe(routing_key: &str, body: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    match routing_key {
        "customer.upsert" => {
            let phones: Vec<String> = body["customer"]["phones"]
                .as_array()
                .map(|p| {
                    p.iter().map(|p| p["e164"].as_str().map_or_else(|| text(&p["number"]), str::to_owned)).collect()
                })
                .unwrap_or_default();
            format!(
                "customer.upsert {} {} {} ({}) {}",
                text(&body["source"]["object"]),
                text(&body["source"]["id"]),
                text(&body["customer"]["name"]),
                text(&body["customer"]["company"]),
                phones.join(" "),
            )
        }
        "customer.removed" => {
            let successor = match body["successor"].as_object() {
                Some(s) => format!(
                    " → {} {}",
                    s.get("object").and_then(Value::as_str).unwrap_or("-"),
                    s.get("id").and_then(Value::as_str).unwrap_or("-")
                ),
                None => String::new(),
            };
            format!(
                "customer.removed {} {} {}{successor}",
                text(&body["source"]["object"]),
                text(&body["source"]["id"]),
                text(&body["reason"]),
            )
        }
        "import.completed" => {
            let counts: Vec<String> = body["objects"]
                .as_array()
                .map(|o| {
                    o.iter()
                        .map(|c| {
                            let removed = c["removed"].as_u64().map(|n| format!(", {n} removed")).unwrap_or_default();
                            format!(
                                "{} {} published, {} skipped{removed}",
                                text(&c["object"]),
                                c["published"],
                                c["skipped"]
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut line = format!(
                "import.completed {} {} {}: {}{}",
                text(&body["tenant_id"]),
                text(&body["run_id"]),
                text(&body["status"]),
                if counts.is_empty() { "nothing read".to_owned() } else { counts.join(", ") },
                if body["more_pending"] == true { "; more pending" } else { "" },
            );
            if let Some(error) = body["error"].as_object() {
                line.push_str(&format!(
                    "; error {}: {}",
                    error.get("code").and_then(Value::as_str).unwrap_or("-"),
                    error.get("message").and_then(Value::as_str).unwrap_or("-")
                ));
            }
            line
        }
        "activity.written" => {
            let owner = &body["owner"];
            format!(
                "activity.written {} {}: Task {} on {} {}, owner {} ({}), attempt {}",
                text(&body["tenant_id"]),
                text(&body["event_id"]),
                text(&body["task_id"]),
                text(&body["target"]["object"]),
                text(&body["target"]["id"]),
                text(&owner["salesforce_user_id"]),
                match owner["fallback"].as_bool() {
                    Some(true) => "fallback: the connection's user",
                    Some(false) => "linked",
                    None => "-",
                },
                body["attempts"],
            )
        }
        "activity.failed" => {
            let error = &body["error"];
            let sf_code = error["salesforce_error_code"].as_str().map(|c| format!(" [{c}]")).unwrap_or_default();
            format!(
                "activity.failed {} {}: {}{sf_code}: {} (after {} attempts; no Task written)",
                text(&body["tenant_id"]),
                text(&body["event_id"]),
                text(&error["code"]),
                text(&error["message"]),
                body["attempts"],
            )
        }
        "customer.linked" => format!(
            "customer.linked {} customer {} → {} {} ({})",
            text(&body["tenant_id"]),
            text(&body["customer_id"]),
            text(&body["salesforce"]["object"]),
            text(&body["salesforce"]["id"]),
            text(&body["how"]),
        ),
        other => format!("{other} {body}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::describe;

    #[test]
    fn a_customer_reads_as_object_id_name_company_and_phones() {
        let body = json!({
            "source": {"object": "Lead", "id": "00Q5j00000AbCdEEAV"},
            "customer": {"name": "佐藤 太郎", "company": "株式会社テスト",
                "phones": [{"number": "03-1234-5678", "e164": "+81312345678"}, {"number": "不明", "e164": null}]},
        });
        assert_eq!(
            describe("customer.upsert", &body),
            "customer.upsert Lead 00Q5j00000AbCdEEAV 佐藤 太郎 (株式会社テスト) +81312345678 不明"
        );
    }

    #[test]
    fn a_run_reads_as_its_counts_and_error() {
        let body = json!({
            "tenant_id": "demo", "run_id": "run_1", "status": "failed", "more_pending": true,
            "objects": [{"object": "Lead", "published": 2000, "skipped": 3}],
            "error": {"code": "salesforce_rejected", "message": "INVALID_TYPE"},
        });
        assert_eq!(
            describe("import.completed", &body),
            "import.completed demo run_1 failed: Lead 2000 published, 3 skipped; more pending; error salesforce_rejected: INVALID_TYPE"
        );
    }

    /// The contract's examples, as fa-messages keeps them.
    fn example(json: &str) -> serde_json::Value {
        serde_json::from_str(json).expect("an example is JSON")
    }

    #[test]
    fn a_removal_reads_as_the_record_its_reason_and_successor() {
        let mut body = example(include_str!("../../../shared/messages/examples/customer.removed.v1.converted.json"));
        assert_eq!(
            describe("customer.removed", &body),
            "customer.removed Lead 00Q5j00000ABCdeEAH converted → Contact 0035j00000XyZabAAF"
        );
        body["reason"] = json!("deleted");
        body["successor"] = serde_json::Value::Null;
        assert_eq!(describe("customer.removed", &body), "customer.removed Lead 00Q5j00000ABCdeEAH deleted");
        let run = json!({"tenant_id": "demo", "run_id": "run_2", "status": "succeeded", "more_pending": false,
            "objects": [{"object": "Lead", "published": 1, "skipped": 0, "removed": 2}]});
        assert_eq!(
            describe("import.completed", &run),
            "import.completed demo run_2 succeeded: Lead 1 published, 0 skipped, 2 removed"
        );
    }

    #[test]
    fn a_written_activity_reads_as_task_target_and_owner() {
        let mut body = example(include_str!("../../../shared/messages/examples/activity.written.v1.json"));
        assert_eq!(
            describe("activity.written", &body),
            "activity.written acme-jp as_01JDQ8Z6X0M2T4K9P3W7R5B1C8: Task 00T5j00000LmNopEAF on Lead \
             00Q5j00000ABCdeEAH, owner 0055j00000Abc12AAB (linked), attempt 1"
        );
        body["owner"]["fallback"] = json!(true);
        assert!(describe("activity.written", &body).contains("(fallback: the connection's user)"));
    }

    #[test]
    fn a_failed_activity_reads_as_its_code_and_message() {
        assert_eq!(
            describe(
                "activity.failed",
                &example(include_str!("../../../shared/messages/examples/activity.failed.v1.json"))
            ),
            "activity.failed acme-jp as_01JDQB3M5P8Q1R4S7T0U2V6W9X: salesforce_rejected \
             [FIELD_CUSTOM_VALIDATION_EXCEPTION]: Salesforce rejected the Task: FIELD_CUSTOM_VALIDATION_EXCEPTION: \
             件名は必須です (after 1 attempts; no Task written)"
        );
        let body = json!({"tenant_id": "demo", "event_id": "as_1", "attempts": 3,
            "error": {"code": "not_connected", "message": "tenant demo has no connection"}});
        assert_eq!(
            describe("activity.failed", &body),
            "activity.failed demo as_1: not_connected: tenant demo has no connection (after 3 attempts; no Task written)"
        );
    }

    #[test]
    fn a_linked_customer_reads_as_customer_record_and_how() {
        assert_eq!(
            describe(
                "customer.linked",
                &example(include_str!("../../../shared/messages/examples/customer.linked.v1.created.json"))
            ),
            "customer.linked acme-jp customer c-99001 → Lead 00Q5j00000QrStuEAF (created)"
        );
    }

    #[test]
    fn other_messages_print_their_body() {
        let body = json!({"tenant_id": "demo"});
        assert_eq!(describe("customer.moved", &body), r#"customer.moved {"tenant_id":"demo"}"#);
    }
}

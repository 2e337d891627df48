//! The Rust types, the embedded schemas and the examples must say the same thing; these tests
//! fail when any of them drifts from the others or from the contract in `shared/contracts`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::fs;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use fa_messages::validation::{validate, validate_message};
use fa_messages::*;
use serde_json::{Value, json};
use time::macros::datetime;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

// --- Files -----------------------------------------------------------------------------------

fn crate_dir(sub: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join(sub)
}

/// `(file name, parsed JSON)` of every `.json` file directly in `dir`, sorted by name.
fn json_files(dir: &Path) -> Vec<(String, Value)> {
    let mut files: Vec<(String, Value)> = fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            let text = fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {name}: {err}"));
            let value = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{name} is not JSON: {err}"));
            (name, value)
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

fn examples() -> Vec<(String, Value)> {
    let files = json_files(&crate_dir("examples"));
    assert!(!files.is_empty(), "no examples found");
    files
}

fn invalid_examples() -> Vec<(String, Value)> {
    let files = json_files(&crate_dir("examples/invalid"));
    assert!(!files.is_empty(), "no invalid examples found");
    files
}

/// `customer.upsert.v1.contact.json` is an instance of `customer.upsert.v1`.
fn type_of(file_name: &str) -> String {
    let parts: Vec<&str> = file_name.split('.').collect();
    assert!(parts.len() >= 4, "{file_name} does not start with a message type");
    let type_name = parts[..3].join(".");
    assert!(MESSAGE_TYPES.contains(&type_name.as_str()), "{file_name}: unknown message type {type_name}");
    type_name
}

/// The contract directory, when this machine has it (CI does not).
fn contract_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FA_CONTRACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(MANIFEST_DIR).join("../../../shared/contracts"));
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipped: no contract directory at {} (set FA_CONTRACTS_DIR to compare)", dir.display());
        None
    }
}

// --- Dispatch from a type name to its Rust type ---------------------------------------------

macro_rules! by_type {
    ($type_name:expr, $f:ident($($arg:expr),*)) => {
        match $type_name {
            AssistCompletedV1::TYPE => $f::<AssistCompletedV1>($($arg),*),
            CustomerUpsertV1::TYPE => $f::<CustomerUpsertV1>($($arg),*),
            CustomerRemovedV1::TYPE => $f::<CustomerRemovedV1>($($arg),*),
            CustomerLinkedV1::TYPE => $f::<CustomerLinkedV1>($($arg),*),
            ActivityWrittenV1::TYPE => $f::<ActivityWrittenV1>($($arg),*),
            ActivityFailedV1::TYPE => $f::<ActivityFailedV1>($($arg),*),
            ImportRequestedV1::TYPE => $f::<ImportRequestedV1>($($arg),*),
            ImportCompletedV1::TYPE => $f::<ImportCompletedV1>($($arg),*),
            other => panic!("no Rust type for {other}"),
        }
    };
}

fn rust_accepts<M: Message>(body: &Value) -> Result<(), String> {
    serde_json::from_value::<M>(body.clone()).map(drop).map_err(|err| err.to_string())
}

fn message_id_of<M: Message>(body: &Value) -> (String, String) {
    let message: M = serde_json::from_value(body.clone()).expect("example deserialises");
    (message.message_id(), message.tenant_id().to_string())
}

/// Deserialise, re-serialise, deserialise again: returns the re-serialised body, after checking
/// the two values are equal.
fn round_trip<M: Message + PartialEq + Debug>(body: &Value) -> Result<Value, String> {
    let first: M = serde_json::from_value(body.clone()).map_err(|err| format!("does not deserialise: {err}"))?;
    let written = serde_json::to_value(&first).map_err(|err| format!("does not serialise: {err}"))?;
    let second: M = serde_json::from_value(written.clone())
        .map_err(|err| format!("re-serialised body does not deserialise: {err}"))?;
    if first != second {
        return Err(format!("round trip changed the value:\n{first:#?}\n{second:#?}"));
    }
    Ok(written)
}

fn deserialise_equal<M: Message + PartialEq + Debug>(a: &Value, b: &Value) -> Result<(), String> {
    let a: M = serde_json::from_value(a.clone()).map_err(|err| format!("first does not deserialise: {err}"))?;
    let b: M = serde_json::from_value(b.clone()).map_err(|err| format!("second does not deserialise: {err}"))?;
    if a == b { Ok(()) } else { Err(format!("values differ:\n{a:#?}\n{b:#?}")) }
}

// --- A small walker over the schemas, enough for these files ---------------------------------

struct Schemas {
    defs: Value,
    by_type: BTreeMap<String, Value>,
}

impl Schemas {
    fn load() -> Self {
        let defs = serde_json::from_str(DEFS).expect("_defs.json is JSON");
        let by_type = SCHEMAS
            .iter()
            .map(|(name, text)| ((*name).to_owned(), serde_json::from_str(text).expect("schema is JSON")))
            .collect();
        Self { defs, by_type }
    }

    fn root(&self, type_name: &str) -> Vec<&Value> {
        self.expand(&self.by_type[type_name])
    }

    /// The subschemas that apply to a value: `$ref`s followed, `allOf` merged, and the object
    /// branches of `oneOf` (the schemas only use it for "null or X").
    fn expand<'a>(&'a self, node: &'a Value) -> Vec<&'a Value> {
        let mut out = vec![node];
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let pointer = reference
                .strip_prefix("_defs.json#")
                .or_else(|| reference.strip_prefix('#'))
                .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
            let target = self.defs.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}"));
            out.extend(self.expand(target));
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            for branch in node.get(key).and_then(Value::as_array).into_iter().flatten() {
                out.extend(self.expand(branch));
            }
        }
        out
    }

    fn properties<'a>(nodes: &[&'a Value]) -> BTreeMap<&'a str, Vec<&'a Value>> {
        let mut props: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for node in nodes {
            for (key, sub) in node.get("properties").and_then(Value::as_object).into_iter().flatten() {
                props.entry(key.as_str()).or_default().push(sub);
            }
        }
        props
    }

    fn required<'a>(nodes: &[&'a Value]) -> BTreeSet<&'a str> {
        nodes
            .iter()
            .flat_map(|node| node.get("required").and_then(Value::as_array).into_iter().flatten())
            .filter_map(Value::as_str)
            .collect()
    }

    fn property<'a>(&'a self, nodes: &[&'a Value], key: &str) -> Vec<&'a Value> {
        Self::properties(nodes).get(key).into_iter().flatten().flat_map(|sub| self.expand(sub)).collect()
    }

    fn items<'a>(&'a self, nodes: &[&'a Value]) -> Vec<&'a Value> {
        nodes.iter().filter_map(|node| node.get("items")).flat_map(|sub| self.expand(sub)).collect()
    }

    /// Every object in `value` with its JSON pointer and the subschemas that apply to it.
    fn objects<'a>(
        &'a self,
        value: &Value,
        nodes: Vec<&'a Value>,
        path: String,
        out: &mut Vec<(String, Vec<&'a Value>)>,
    ) {
        match value {
            Value::Object(map) => {
                out.push((path.clone(), nodes.clone()));
                for (key, child) in map {
                    self.objects(child, self.property(&nodes, key), format!("{path}/{key}"), out);
                }
            }
            Value::Array(items) => {
                let item_nodes = self.items(&nodes);
                for (index, child) in items.iter().enumerate() {
                    self.objects(child, item_nodes.clone(), format!("{path}/{index}"), out);
                }
            }
            _ => {}
        }
    }
}

fn edit(body: &Value, pointer: &str, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut copy = body.clone();
    let target = if pointer.is_empty() { Some(&mut copy) } else { copy.pointer_mut(pointer) };
    change(target.and_then(Value::as_object_mut).unwrap_or_else(|| panic!("no object at {pointer:?}")));
    copy
}

// --- Examples --------------------------------------------------------------------------------

#[test]
fn every_example_validates_against_its_schema() {
    for (name, body) in examples() {
        if let Err(errors) = validate(&type_of(&name), &body) {
            panic!("{name} breaks its schema: {errors:#?}");
        }
    }
}

#[test]
fn every_example_round_trips_through_its_rust_type_and_stays_valid() {
    for (name, body) in examples() {
        let type_name = type_of(&name);
        let written = by_type!(type_name.as_str(), round_trip(&body)).unwrap_or_else(|err| panic!("{name}: {err}"));
        if let Err(errors) = validate(&type_name, &written) {
            panic!("{name} re-serialised breaks its schema: {errors:#?}\n{written:#}");
        }
    }
}

/// A misspelt optional field would deserialise as `None` and round-trip happily; comparing keys
/// catches it.
#[test]
fn re_serialising_an_example_keeps_every_field_it_had() {
    fn keys(value: &Value, path: String, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => map.iter().filter(|(_, child)| !child.is_null()).for_each(|(key, child)| {
                let child_path = format!("{path}/{key}");
                out.insert(child_path.clone());
                keys(child, child_path, out);
            }),
            Value::Array(items) => {
                items.iter().enumerate().for_each(|(i, child)| keys(child, format!("{path}/{i}"), out))
            }
            _ => {}
        }
    }
    for (name, body) in examples() {
        let written =
            by_type!(type_of(&name).as_str(), round_trip(&body)).unwrap_or_else(|err| panic!("{name}: {err}"));
        let (mut before, mut after) = (BTreeSet::new(), BTreeSet::new());
        keys(&body, String::new(), &mut before);
        keys(&written, String::new(), &mut after);
        let lost: Vec<_> = before.difference(&after).collect();
        assert!(lost.is_empty(), "{name}: re-serialising lost {lost:?}");
    }
}

#[test]
fn serialised_messages_use_only_properties_their_schema_declares() {
    let schemas = Schemas::load();
    for (name, body) in examples() {
        let type_name = type_of(&name);
        let written = by_type!(type_name.as_str(), round_trip(&body)).unwrap_or_else(|err| panic!("{name}: {err}"));
        let mut objects = Vec::new();
        schemas.objects(&written, schemas.root(&type_name), String::new(), &mut objects);
        for (path, nodes) in objects {
            let declared = Schemas::properties(&nodes);
            for key in written.pointer(&path).and_then(Value::as_object).expect("object").keys() {
                assert!(declared.contains_key(key.as_str()), "{name}: {path}/{key} is not in the schema");
            }
        }
    }
}

#[test]
fn every_invalid_example_is_refused_by_the_schema_and_the_rust_type() {
    for (name, body) in invalid_examples() {
        let type_name = type_of(&name);
        assert!(validate(&type_name, &body).is_err(), "the schema accepts invalid/{name}");
        if by_type!(type_name.as_str(), rust_accepts(&body)).is_ok() {
            panic!("{type_name} accepts invalid/{name}");
        }
    }
}

#[test]
fn leaving_out_any_required_field_is_refused_by_the_schema_and_the_rust_type() {
    let schemas = Schemas::load();
    for (name, body) in examples() {
        let type_name = type_of(&name);
        let mut objects = Vec::new();
        schemas.objects(&body, schemas.root(&type_name), String::new(), &mut objects);
        for (path, nodes) in objects {
            for key in Schemas::required(&nodes) {
                let broken = edit(&body, &path, |object| {
                    object.remove(key);
                });
                assert!(validate(&type_name, &broken).is_err(), "{name}: the schema accepts it without {path}/{key}");
                if by_type!(type_name.as_str(), rust_accepts(&broken)).is_ok() {
                    panic!("{name}: {type_name} accepts it without {path}/{key}");
                }
            }
        }
    }
}

#[test]
fn leaving_out_any_optional_field_is_accepted_by_the_schema_and_the_rust_type() {
    let schemas = Schemas::load();
    for (name, body) in examples() {
        let type_name = type_of(&name);
        let mut objects = Vec::new();
        schemas.objects(&body, schemas.root(&type_name), String::new(), &mut objects);
        for (path, nodes) in objects {
            let required = Schemas::required(&nodes);
            let present: Vec<String> =
                body.pointer(&path).and_then(Value::as_object).expect("object").keys().cloned().collect();
            for key in present.iter().filter(|key| !required.contains(key.as_str())) {
                let trimmed = edit(&body, &path, |object| {
                    object.remove(key);
                });
                if let Err(errors) = validate(&type_name, &trimmed) {
                    panic!("{name}: the schema refuses it without {path}/{key}: {errors:?}");
                }
                if let Err(err) = by_type!(type_name.as_str(), rust_accepts(&trimmed)) {
                    panic!("{name}: {type_name} refuses it without {path}/{key}: {err}");
                }
            }
        }
    }
}

#[test]
fn unknown_fields_are_ignored_at_every_level() {
    let schemas = Schemas::load();
    for (name, body) in examples() {
        let type_name = type_of(&name);
        let mut objects = Vec::new();
        schemas.objects(&body, schemas.root(&type_name), String::new(), &mut objects);
        let mut extended = body.clone();
        for (path, _) in &objects {
            extended = edit(&extended, path, |object| {
                object.insert("x_added_in_v1_1".to_owned(), json!({ "anything": [1, "two", null] }));
            });
        }
        assert!(validate(&type_name, &extended).is_ok(), "{name}: the schema refuses unknown fields");
        by_type!(type_name.as_str(), deserialise_equal(&body, &extended)).unwrap_or_else(|err| panic!("{name}: {err}"));
    }
}

#[test]
fn every_message_type_has_a_schema_file_and_an_example() {
    let schema_files: BTreeSet<String> = json_files(&crate_dir("schemas")).into_iter().map(|(name, _)| name).collect();
    let mut expected: BTreeSet<String> = MESSAGE_TYPES.iter().map(|t| format!("{t}.json")).collect();
    expected.insert("_defs.json".to_owned());
    assert_eq!(schema_files, expected, "schemas/ and MESSAGE_TYPES differ");
    let example_types: BTreeSet<String> = examples().iter().map(|(name, _)| type_of(name)).collect();
    let all_types: BTreeSet<String> = MESSAGE_TYPES.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(example_types, all_types, "some message type has no example");
}

#[test]
fn embedded_schemas_are_the_files_in_schemas_dir() {
    for (name, on_disk) in json_files(&crate_dir("schemas")) {
        let embedded: Value = serde_json::from_str(schema(&name).expect("embedded")).expect("JSON");
        assert_eq!(embedded, on_disk, "{name}");
    }
}

// --- The trait -------------------------------------------------------------------------------

#[test]
fn routing_follows_amqp_md() {
    let expected = [
        (AssistCompletedV1::TYPE, AssistCompletedV1::ROUTING_KEY, AssistCompletedV1::EXCHANGE),
        (CustomerUpsertV1::TYPE, CustomerUpsertV1::ROUTING_KEY, CustomerUpsertV1::EXCHANGE),
        (CustomerRemovedV1::TYPE, CustomerRemovedV1::ROUTING_KEY, CustomerRemovedV1::EXCHANGE),
        (CustomerLinkedV1::TYPE, CustomerLinkedV1::ROUTING_KEY, CustomerLinkedV1::EXCHANGE),
        (ActivityWrittenV1::TYPE, ActivityWrittenV1::ROUTING_KEY, ActivityWrittenV1::EXCHANGE),
        (ActivityFailedV1::TYPE, ActivityFailedV1::ROUTING_KEY, ActivityFailedV1::EXCHANGE),
        (ImportRequestedV1::TYPE, ImportRequestedV1::ROUTING_KEY, ImportRequestedV1::EXCHANGE),
        (ImportCompletedV1::TYPE, ImportCompletedV1::ROUTING_KEY, ImportCompletedV1::EXCHANGE),
    ];
    assert_eq!(
        expected,
        [
            ("assist.completed.v1", "assist.completed", "frontagent.assist"),
            ("customer.upsert.v1", "customer.upsert", "salesforce.sync"),
            ("customer.removed.v1", "customer.removed", "salesforce.sync"),
            ("customer.linked.v1", "customer.linked", "salesforce.sync"),
            ("activity.written.v1", "activity.written", "salesforce.sync"),
            ("activity.failed.v1", "activity.failed", "salesforce.sync"),
            ("import.requested.v1", "import.requested", "salesforce.commands"),
            ("import.completed.v1", "import.completed", "salesforce.sync"),
        ]
    );
    assert_eq!(expected.map(|(type_name, _, _)| type_name), MESSAGE_TYPES);
    for (type_name, _, _) in expected {
        let parsed: Value = serde_json::from_str(schema(type_name).expect("schema")).expect("JSON");
        assert_eq!(parsed["$id"], format!("{type_name}.json"), "TYPE and the schema's $id differ");
    }

    let Some(dir) = contract_dir() else { return };
    let amqp = fs::read_to_string(dir.join("amqp.md")).expect("amqp.md");
    for (type_name, routing_key, exchange) in expected {
        let row = format!("| `{type_name}` | `{routing_key}` | `{exchange}` |");
        assert!(amqp.contains(&row), "amqp.md has no row starting {row}");
    }
}

#[test]
fn topology_names_follow_amqp_md() {
    use fa_messages::topology::*;
    assert_eq!(ASSIST_EXCHANGE, "frontagent.assist");
    assert_eq!(SYNC_EXCHANGE, "salesforce.sync");
    assert_eq!(COMMANDS_EXCHANGE, "salesforce.commands");
    assert_eq!(DLX_EXCHANGE, "salesforce.dlx");
    assert_eq!(ACTIVITY_WRITER_ASSIST_QUEUE, "activity-writer.assist");
    assert_eq!(IMPORTER_COMMANDS_QUEUE, "importer.commands");

    let Some(dir) = contract_dir() else { return };
    let amqp = fs::read_to_string(dir.join("amqp.md")).expect("amqp.md");
    for name in [
        ASSIST_EXCHANGE,
        SYNC_EXCHANGE,
        COMMANDS_EXCHANGE,
        DLX_EXCHANGE,
        ACTIVITY_WRITER_ASSIST_QUEUE,
        IMPORTER_COMMANDS_QUEUE,
        TENANT_ID_HEADER,
        ERROR_HEADER,
    ] {
        assert!(amqp.contains(&format!("`{name}`")), "amqp.md does not mention `{name}`");
    }
}

#[test]
fn message_ids_of_the_examples_follow_amqp_md() {
    let expected: BTreeMap<&str, &str> = [
        ("activity.failed.v1.json", "failed:as_01JDQB3M5P8Q1R4S7T0U2V6W9X"),
        ("activity.failed.v1.not-connected.json", "failed:as_01JDQC0000000000000000000"),
        ("activity.written.v1.json", "written:as_01JDQ8Z6X0M2T4K9P3W7R5B1C8"),
        ("activity.written.v1.fallback-owner.json", "written:as_01JDQ9A1K7V3N8C2F6H0Y4D5E9"),
        ("assist.completed.v1.contact-15-char-id.json", "as_01JDQD7N2B5C8E1G4J7L0P3R6T"),
        ("assist.completed.v1.lead-linked.json", "as_01JDQ8Z6X0M2T4K9P3W7R5B1C8"),
        ("assist.completed.v1.unknown-caller.json", "as_01JDQ9A1K7V3N8C2F6H0Y4D5E9"),
        ("customer.linked.v1.created.json", "acme-jp:c-99001:00Q5j00000QrStuEAF"),
        ("customer.linked.v1.matched-duplicate-rule.json", "globex.co.jp:c-7:0015j00000PqRstAAF"),
        ("customer.linked.v1.matched-phone.json", "acme-jp:c-55013:0035j00000XyZabAAF"),
        ("customer.removed.v1.converted.json", "acme-jp:Lead:00Q5j00000ABCdeEAH:removed:2026-11-27T02:15:40.000Z"),
        ("customer.upsert.v1.account-no-e164.json", "acme-jp:Account:0015j00000PqRstAAF:2026-11-20T01:05:41.250Z"),
        ("customer.upsert.v1.contact-no-account.json", "acme-jp:Contact:0035j00000AbCdeAAF:2026-11-22T12:00:00.999Z"),
        ("customer.upsert.v1.contact.json", "acme-jp:Contact:0035j00000XyZabAAF:2026-11-20T01:02:03.000Z"),
        ("customer.upsert.v1.lead.json", "acme-jp:Lead:00Q5j00000DeFghEAF:2026-11-21T09:30:00.000Z"),
        ("import.completed.v1.failed-interrupted.json", "run_01JDQ8B4C0"),
        ("import.completed.v1.failed-salesforce.json", "run_01JDQ8C5D1"),
        ("import.completed.v1.json", "run_01JDQ7T2A9"),
        ("import.requested.v1.catch-up.json", "acme-jp:catch_up:2026-11-25T00:00:04.881Z"),
        ("import.requested.v1.json", "acme-jp:connected:2026-11-25T00:00:00.000Z"),
        ("import.requested.v1.manual-offset.json", "acme-jp:manual:2026-11-25T09:30:00.000Z"),
    ]
    .into_iter()
    .collect();
    for (name, body) in examples() {
        let want = expected.get(name.as_str()).unwrap_or_else(|| panic!("no expected message_id for {name}"));
        let (message_id, tenant_id) = by_type!(type_of(&name).as_str(), message_id_of(&body));
        assert_eq!(&message_id, want, "{name}");
        assert_eq!(Some(tenant_id.as_str()), body["tenant_id"].as_str(), "{name}: tenant_id()");
    }
}

// --- Messages built in Rust ------------------------------------------------------------------

fn tenant() -> TenantId {
    TenantId::new("acme-jp").expect("tenant")
}

fn event() -> EventId {
    EventId::new("as_01JDQ8Z6X0M2T4K9P3W7R5B1C8").expect("event")
}

fn sf(id: &str) -> SalesforceId {
    SalesforceId::new(id).expect("Salesforce id")
}

fn lead_ref() -> SalesforceRef {
    SalesforceRef { object: SObject::Lead, id: sf("00Q5j00000ABCde") }
}

fn attempts(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero")
}

/// Every message with each optional field `None` (`full = false`) or `Some` (`full = true`),
/// serialised, with its type name.
fn built_in_rust(full: bool) -> Vec<(&'static str, Value)> {
    fn body<M: Message>(message: &M) -> (&'static str, Value) {
        (M::TYPE, serde_json::to_value(message).expect("serialises"))
    }
    let some = |text: &str| full.then(|| text.to_owned());
    let at = datetime!(2026-11-25 01:12:30.123456 UTC);
    vec![
        body(&AssistCompletedV1 {
            event_id: event(),
            tenant_id: tenant(),
            occurred_at: at,
            user: AssistUser { id: "u-1001".into(), name: some("山田 太郎") },
            customer: AssistCustomer {
                id: "c-1".into(),
                name: some("佐藤 花子"),
                company: some("株式会社サンプル商事"),
                email: some("hanako@example.jp"),
                phones: full.then(|| vec!["03-1234-5678".to_owned()]),
                salesforce: full.then(lead_ref),
            },
            call: Call {
                direction: CallDirection::Outbound,
                started_at: at,
                ended_at: full.then_some(at),
                duration_seconds: 86_400,
                customer_number: some("+81312345678"),
            },
            assist: Assist {
                summary: "要約".into(),
                transcript: full.then(|| {
                    vec![
                        Utterance { speaker: Speaker::Agent, text: "はい".into(), offset_seconds: Some(0.0) },
                        Utterance { speaker: Speaker::Customer, text: "どうも".into(), offset_seconds: Some(1.5) },
                    ]
                }),
            },
        }),
        body(&CustomerUpsertV1 {
            tenant_id: tenant(),
            import_run_id: "run_1".into(),
            source: CustomerSource {
                system: SourceSystem::Salesforce,
                object: SObject::Contact,
                id: sf("0035j00000XyZab"),
                modified_at: at,
            },
            customer: CustomerFields {
                name: "鈴木 一郎".into(),
                company: some("鈴木工業株式会社"),
                email: some("ichiro@example.jp"),
                phones: vec![CustomerPhone { number: "06-6123-4567".into(), e164: some("+81661234567") }],
            },
        }),
        body(&CustomerRemovedV1 {
            tenant_id: tenant(),
            import_run_id: "run_1".into(),
            source: CustomerSource {
                system: SourceSystem::Salesforce,
                object: SObject::Lead,
                id: sf("00Q5j00000ABCde"),
                modified_at: at,
            },
            reason: if full { RemovalReason::Converted } else { RemovalReason::Deleted },
            successor: full.then(|| SalesforceRef { object: SObject::Contact, id: sf("0035j00000XyZab") }),
        }),
        body(&CustomerLinkedV1 {
            tenant_id: tenant(),
            customer_id: "c-1".into(),
            salesforce: lead_ref(),
            how: LinkMethod::MatchedEmail,
            linked_at: at,
        }),
        body(&ActivityWrittenV1 {
            tenant_id: tenant(),
            event_id: event(),
            task_id: sf("00T5j00000LmNop"),
            target: lead_ref(),
            owner: TaskOwner { salesforce_user_id: sf("0055j00000Abc12"), fallback: false },
            written_at: at,
            attempts: attempts(1),
        }),
        body(&ActivityFailedV1 {
            tenant_id: tenant(),
            event_id: event(),
            error: ErrorDetail {
                code: ActivityFailureCode::RetriesExhausted,
                message: "Salesforce kept failing for 24 hours".into(),
                salesforce_error_code: some("UNABLE_TO_LOCK_ROW"),
            },
            attempts: attempts(40),
            failed_at: at,
        }),
        body(&ImportRequestedV1 { tenant_id: tenant(), reason: ImportReason::CatchUp, requested_at: at }),
        body(&ImportCompletedV1 {
            tenant_id: tenant(),
            run_id: "run_1".into(),
            status: if full { ImportStatus::Failed } else { ImportStatus::Succeeded },
            started_at: at,
            finished_at: at,
            objects: vec![ObjectCounts {
                object: SObject::Account,
                published: 0,
                skipped: 1,
                removed: full.then_some(2),
            }],
            more_pending: false,
            error: full.then(|| ErrorDetail {
                code: IMPORT_INTERRUPTED.to_owned(),
                message: "stopped".into(),
                salesforce_error_code: some("REQUEST_LIMIT_EXCEEDED"),
            }),
        }),
    ]
}

#[test]
fn messages_built_with_every_optional_field_none_are_valid() {
    let built = built_in_rust(false);
    assert_eq!(built.iter().map(|(t, _)| *t).collect::<Vec<_>>(), MESSAGE_TYPES);
    for (type_name, body) in built {
        if let Err(errors) = validate(type_name, &body) {
            panic!("{type_name}: {errors:#?}\n{body:#}");
        }
    }
}

#[test]
fn messages_built_with_every_optional_field_set_are_valid() {
    for (type_name, body) in built_in_rust(true) {
        if let Err(errors) = validate(type_name, &body) {
            panic!("{type_name}: {errors:#?}\n{body:#}");
        }
    }
}

/// With every optional field set, the body must carry every property the schema declares; a
/// property missing here is a field the Rust type forgot.
#[test]
fn every_schema_property_has_a_rust_field() {
    let schemas = Schemas::load();
    for (type_name, body) in built_in_rust(true) {
        let mut objects = Vec::new();
        schemas.objects(&body, schemas.root(type_name), String::new(), &mut objects);
        for (path, nodes) in objects {
            let object = body.pointer(&path).and_then(Value::as_object).expect("object");
            for key in Schemas::properties(&nodes).keys() {
                assert!(object.get(*key).is_some_and(|v| !v.is_null()), "{type_name}: {path}/{key} is missing or null");
            }
        }
    }
}

#[test]
fn required_nullable_fields_are_written_as_null() {
    let (_, upsert) = built_in_rust(false).into_iter().find(|(t, _)| *t == CustomerUpsertV1::TYPE).expect("upsert");
    assert_eq!(upsert["customer"]["company"], Value::Null);
    assert_eq!(upsert["customer"]["email"], Value::Null);
    assert_eq!(upsert["customer"]["phones"][0]["e164"], Value::Null);
    let customer = upsert["customer"].as_object().expect("object");
    assert!(customer.contains_key("company") && customer.contains_key("email"));
}

#[test]
fn timestamps_are_written_in_utc_with_millis() {
    let (_, upsert) = built_in_rust(false).into_iter().find(|(t, _)| *t == CustomerUpsertV1::TYPE).expect("upsert");
    assert_eq!(upsert["source"]["modified_at"], "2026-11-25T01:12:30.123Z");
    assert_eq!(upsert["source"]["id"], "0035j00000XyZabAAF", "15-character ids are written as 18");
}

#[test]
fn validate_message_checks_a_typed_message() {
    let request = ImportRequestedV1 {
        tenant_id: tenant(),
        reason: ImportReason::Manual,
        requested_at: datetime!(2026-11-25 00:00 UTC),
    };
    assert_eq!(validate_message(&request), Ok(()));
    let bad_count = ImportCompletedV1 {
        tenant_id: tenant(),
        run_id: String::new(),
        status: ImportStatus::Succeeded,
        started_at: datetime!(2026-11-25 00:00 UTC),
        finished_at: datetime!(2026-11-25 00:01 UTC),
        objects: vec![],
        more_pending: false,
        error: None,
    };
    let errors = validate_message(&bad_count).expect_err("empty run_id");
    assert!(errors.iter().any(|line| line.starts_with("/run_id:")), "{errors:?}");
}

// --- The contract itself ---------------------------------------------------------------------

#[test]
fn schema_copies_are_the_contracts_schemas() {
    let Some(dir) = contract_dir() else { return };
    let ours = crate_dir("schemas");
    let mut theirs: Vec<String> = fs::read_dir(dir.join("schemas"))
        .expect("contract schemas")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    theirs.sort();
    let mut mine: Vec<String> = json_files(&ours).into_iter().map(|(name, _)| name).collect();
    mine.sort();
    assert_eq!(mine, theirs, "schemas/ has other files than the contract");
    for name in theirs {
        let contract = fs::read(dir.join("schemas").join(&name)).expect("contract schema");
        let copy = fs::read(ours.join(&name)).expect("our copy");
        assert!(copy == contract, "schemas/{name} differs from the contract's; copy it again");
    }
}

#[test]
fn contract_examples_are_all_copied_unchanged() {
    let Some(dir) = contract_dir() else { return };
    for (name, _) in json_files(&dir.join("examples")) {
        let contract = fs::read(dir.join("examples").join(&name)).expect("contract example");
        let copy = fs::read(crate_dir("examples").join(&name)).unwrap_or_else(|_| panic!("examples/{name} is missing"));
        assert!(copy == contract, "examples/{name} differs from the contract's; copy it again");
    }
}

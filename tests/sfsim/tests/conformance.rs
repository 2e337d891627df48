//! sfsim driven by simple-salesforce from PyPI, a Salesforce client nobody
//! here wrote: JWT login, query_all over 5,000 records, a create, a
//! collection create and an error (tests/conformance/).

use std::path::PathBuf;

use serde_json::json;

fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::var_os("FA_SF_CONFORMANCE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".local/venv/bin/python"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_salesforce_logs_in_pages_creates_and_reads_errors_as_against_salesforce() {
    let python = python();
    assert!(
        python.exists(),
        "{} is missing: run `make deps`, which installs simple-salesforce into .local/venv \
         (or set FA_SF_CONFORMANCE_PYTHON to a python that has it)",
        python.display()
    );
    let server = sfsim::server::Server::start_local().await.expect("sfsim");
    let org = sfsim::fixture::connected_org(&server.sim, "Conformance").expect("org");
    sfsim::control::generate_into(&server.sim, &org.org, 5000, 0, 0, 11, 730);

    let dir = std::env::temp_dir().join(format!("sfsim-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let credentials = dir.join("credentials.json");
    let body = json!({
        "sfsim_url": server.url, "username": org.username, "consumer_key": org.consumer_key,
        "private_key": org.keys.private_key_pem, "expected_leads": 5000
    });
    std::fs::write(&credentials, body.to_string()).expect("write");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/simple_salesforce_check.py");
    let output =
        tokio::process::Command::new(&python).arg(&script).arg(&credentials).output().await.expect("python runs");
    std::fs::remove_dir_all(&dir).ok();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "simple-salesforce failed against sfsim:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["query_all"], 5000);
    assert_eq!(seen["collection"], json!([true, false]));
    assert_eq!(seen["error"], "MALFORMED_QUERY");
    // 5,000 records at 2,000 a page: one query and two nextRecordsUrl calls.
    let calls = org.org.calls();
    assert_eq!(calls.get("GET /query").copied(), Some(2), "{calls:?}");
    assert_eq!(calls.get("GET /query/{locator}").copied(), Some(2), "{calls:?}");
}

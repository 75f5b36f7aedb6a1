//! `adlens sql`: every example query runs, the output formats, and errors.

use predicates::prelude::*;
use predicates::str::contains;

use crate::support::{adlens, fixture, generate, preprocess};

#[test]
fn every_example_query_runs_and_returns_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = generate(tmp.path(), 4000, 21, 0.03);
    let out = tmp.path().join("clean");
    preprocess(&raw, &out);
    // The cluster examples read `batch` outputs.
    adlens()
        .args(["-q", "batch", "--k", "8", "--dim", "512", "--data"])
        .arg(&out)
        .arg("--models")
        .arg(tmp.path().join("models"))
        .assert()
        .success();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/examples");
    let mut ran = 0;
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // `stream/` reads the stream's outputs: see tests/it/stream.rs.
        }
        let output = adlens()
            .args(["sql", "--format", "csv", "--data"])
            .arg(&out)
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let rows = String::from_utf8(output.stdout).unwrap().lines().count() - 1;
        assert!(rows > 0, "{} returned no rows", path.display());
        ran += 1;
    }
    assert!(ran >= 8, "expected at least 8 examples, ran {ran}");
}

#[test]
fn output_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clean");
    preprocess(&fixture("dirty.csv"), &out);
    let sql = "SELECT campaign_id, domain, keywords FROM campaigns WHERE campaign_id IN (1001, 1007) ORDER BY campaign_id";
    let run = |format: &str| {
        let output = adlens()
            .args(["sql", "--format", format, "--data"])
            .arg(&out)
            .args(["-c", sql])
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    insta::assert_snapshot!("table", run("table"));
    insta::assert_snapshot!("csv", run("csv"));
    insta::assert_snapshot!("json", run("json"));
}

#[test]
fn a_bad_query_is_a_user_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clean");
    preprocess(&fixture("dirty.csv"), &out);
    adlens()
        .args(["sql", "--data"])
        .arg(&out)
        .args(["-c", "SELECT nope FROM campaigns"])
        .assert()
        .code(1)
        .stderr(contains("query failed"))
        .stderr(contains("nope"));
}

#[test]
fn a_missing_data_dir_says_what_to_do() {
    adlens()
        .args(["sql", "--data", "/no/such/dir", "-c", "SELECT 1"])
        .assert()
        .code(1)
        .stderr(contains(
            "`/no/such/dir`: no such data directory; run `adlens preprocess` first",
        ));
}

#[test]
fn udfs_are_available_in_sql() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clean");
    preprocess(&fixture("dirty.csv"), &out);
    let sql = "SELECT registered_domain(url_host(canonical_url('https://www.google.com/url?q=https://m.viajes.com.br/x?gclid=1'))) AS d";
    adlens()
        .args(["sql", "--format", "csv", "--data"])
        .arg(&out)
        .args(["-c", sql])
        .assert()
        .success()
        .stdout("d\nviajes.com.br\n");
}

#[test]
fn exploration_cannot_change_the_managed_outputs_by_accident() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clean");
    preprocess(&fixture("dirty.csv"), &out);
    let files_before = adlens::layout::parquet_files(&out).unwrap();
    let insert = "INSERT INTO campaigns SELECT * FROM campaigns";
    for statement in [
        insert.to_string(),
        "DROP TABLE rejects".to_string(),
        format!(
            "COPY (SELECT 1 AS x) TO '{}/campaigns/extra.parquet'",
            out.display()
        ),
        format!(
            "COPY (SELECT 1 AS x) TO '{}/../clean/x.csv'",
            out.join("rejects").display()
        ),
    ] {
        adlens()
            .args(["sql", "--data"])
            .arg(&out)
            .arg(format!("--command={statement}"))
            .assert()
            .code(1)
            .stderr(contains("would change the managed outputs").and(contains("--allow-writes")));
    }
    assert_eq!(adlens::layout::parquet_files(&out).unwrap(), files_before);

    // Exporting elsewhere and session-only tables keep working.
    let export = tmp.path().join("export.csv");
    adlens()
        .args(["sql", "--data"])
        .arg(&out)
        .arg(format!(
            "--command=CREATE TABLE scratch AS SELECT 1 AS x; INSERT INTO scratch VALUES (2); \
             COPY (SELECT campaign_id FROM campaigns ORDER BY 1) TO '{}'",
            export.display()
        ))
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&export).unwrap(),
        "campaign_id\n1001\n1002\n1007\n1009\n"
    );

    // With --allow-writes the user gets what they asked for.
    adlens()
        .args(["sql", "--allow-writes", "--data"])
        .arg(&out)
        .arg(format!("--command={insert}"))
        .assert()
        .success();
    assert!(adlens::layout::parquet_files(&out).unwrap().len() > files_before.len());
}

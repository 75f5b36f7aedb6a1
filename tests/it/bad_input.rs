//! Bad input gets a one-line error naming the file (and line), exit code 1,
//! and no output directory.

use predicates::prelude::*;
use predicates::str::contains;

use crate::support::{adlens, fixture};

fn preprocess_fails(input: &std::path::Path, expected: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clean");
    let mut assert = adlens()
        .args(["preprocess", "--input"])
        .arg(input)
        .arg("--output")
        .arg(&out)
        .assert()
        .code(1);
    for text in expected {
        assert = assert.stderr(contains(*text));
    }
    assert!(!out.exists(), "nothing may be written on failure");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no staging left behind"
    );
}

#[test]
fn missing_file() {
    let path = std::path::Path::new("/definitely/not/here.csv");
    preprocess_fails(path, &["`/definitely/not/here.csv`: no such file"]);
}

#[test]
fn header_that_does_not_match() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("wrong.csv");
    std::fs::write(&path, "time,id,link\n2023-01-01,1,http://a.example.com\n").unwrap();
    preprocess_fails(
        &path,
        &[
            "wrong.csv` line 1: header does not match",
            "found `time,id,link`",
        ],
    );
}

#[test]
fn file_that_is_not_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("image.csv");
    std::fs::write(&path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe").unwrap();
    preprocess_fails(&path, &["image.csv` line 1: header does not match"]);
}

#[test]
fn empty_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("empty.csv");
    std::fs::write(&path, "").unwrap();
    preprocess_fails(&path, &["empty.csv` line 1: empty file"]);
}

#[test]
fn unwritable_output() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    adlens()
        .args(["preprocess", "--input"])
        .arg(fixture("dirty.csv"))
        .arg("--output")
        .arg(blocker.join("clean"))
        .assert()
        .code(1)
        .stderr(contains("file/clean`: cannot create parent"));
}

#[test]
fn refuses_to_replace_a_directory_that_is_not_an_output() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("precious.txt"), "keep me").unwrap();
    adlens()
        .args(["preprocess", "--input"])
        .arg(fixture("dirty.csv"))
        .arg("--output")
        .arg(tmp.path())
        .assert()
        .code(1)
        .stderr(contains("is not an adlens output"));
    assert!(tmp.path().join("precious.txt").exists());
}

#[test]
fn errors_are_one_line() {
    adlens()
        .args([
            "preprocess",
            "--input",
            "/nope.csv",
            "--output",
            "/tmp/never",
        ])
        .assert()
        .code(1)
        .stderr(predicate::function(|s: &str| {
            s.trim_end().lines().count() == 1
        }));
}

//! `adlens generate`: deterministic, in the real layout, with a truth file.

use crate::support::adlens;

#[test]
fn same_seed_same_bytes_and_a_truth_file() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str| {
        let out = tmp.path().join(name);
        let truth = tmp.path().join(format!("{name}.topics"));
        adlens()
            .args([
                "--quiet", "generate", "--rows", "3000", "--seed", seed, "--out",
            ])
            .arg(&out)
            .arg("--truth")
            .arg(&truth)
            .assert()
            .success();
        (
            std::fs::read(out).unwrap(),
            std::fs::read_to_string(truth).unwrap(),
        )
    };
    let (a, truth) = run("a.csv", "1");
    let (b, _) = run("b.csv", "1");
    let (c, _) = run("c.csv", "2");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.starts_with(b"creation_time,id,url,title,keywords,description\n"));
    let records = csv::Reader::from_reader(a.as_slice())
        .into_records()
        .count();
    assert_eq!(records, 3000);
    assert_eq!(truth.lines().count(), 3001);
    assert!(
        truth
            .lines()
            .skip(1)
            .all(|l| l.split(',').nth(1).is_some_and(|t| !t.is_empty()))
    );
}

#[test]
fn rejects_a_bad_dirty_rate() {
    adlens()
        .args([
            "generate",
            "--rows",
            "10",
            "--out",
            "/tmp/x.csv",
            "--dirty-rate",
            "2",
        ])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "--dirty-rate must be between 0 and 1",
        ));
}

//! The fuzz targets' properties over the committed seeds, on stable
//! `cargo test`: every file in `fuzz/corpus/<target>/` (seeds and crash
//! regressions) and every entry of `fuzz/dict/<target>.dict` goes through
//! `postern::fuzzing::<target>`. Also checks that the fuzz crate and the
//! library agree on the list of targets, and keeps the record codec's seeds
//! equal to today's encoding (a format change must be deliberate).

use std::fs;
use std::path::{Path, PathBuf};

use postern::fuzzing::{TARGETS, target};
use postern::store::codec::{self, AccountRecord, SessionRecord};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Parses a libFuzzer dictionary: `"value"` or `name="value"` per line,
/// `#` comments, escapes `\\`, `\"` and `\xNN`.
fn parse_dict(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let start = line
            .find('"')
            .unwrap_or_else(|| panic!("line {}: no quote", n + 1));
        assert!(
            line.ends_with('"') && line.len() > start + 1,
            "line {}",
            n + 1
        );
        let body = &line.as_bytes()[start + 1..line.len() - 1];
        let mut v = Vec::new();
        let mut i = 0;
        while i < body.len() {
            if body[i] == b'\\' {
                match body.get(i + 1) {
                    Some(b'x') => {
                        let hex = std::str::from_utf8(&body[i + 2..i + 4]).expect("hex");
                        v.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                        i += 4;
                    }
                    Some(&c) => {
                        v.push(c);
                        i += 2;
                    }
                    None => panic!("line {}: trailing backslash", n + 1),
                }
            } else {
                v.push(body[i]);
                i += 1;
            }
        }
        out.push(v);
    }
    out
}

#[test]
fn every_corpus_file_and_dictionary_entry_keeps_the_properties() {
    let mut ran = 0;
    for (name, run) in TARGETS {
        let corpus = fuzz_dir().join("corpus").join(name);
        let seeds = files(&corpus);
        assert!(!seeds.is_empty(), "{name}: empty corpus");
        for f in seeds {
            let data = fs::read(&f).expect("read seed");
            // A panic names the file through this message.
            eprintln!("{name}: {}", f.display());
            run(&data);
            ran += 1;
        }
        let dict = fuzz_dir().join("dict").join(format!("{name}.dict"));
        if let Ok(text) = fs::read_to_string(&dict) {
            let entries = parse_dict(&text);
            assert!(!entries.is_empty(), "{}: no entries", dict.display());
            for e in &entries {
                run(e);
            }
            run(&entries.concat());
        }
    }
    assert!(ran >= TARGETS.len());
}

#[test]
fn fuzz_crate_and_library_list_the_same_targets() {
    let dir = fuzz_dir();
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let template = fs::read(dir.join("fuzz_targets/cookie.rs")).expect("template");
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "{name}: no [[bin]] entry in fuzz/Cargo.toml"
        );
        let file = dir.join(format!("fuzz_targets/{name}.rs"));
        assert_eq!(
            fs::read(&file).ok().as_ref(),
            Some(&template),
            "{}: missing or not the common target file",
            file.display()
        );
    }
    for f in files(&dir.join("fuzz_targets")) {
        let stem = f.file_stem().and_then(|s| s.to_str()).expect("name");
        assert!(target(stem).is_some(), "{stem}: not in fuzzing::TARGETS");
    }
    for d in fs::read_dir(dir.join("corpus")).expect("corpus dir") {
        let d = d.expect("entry").file_name();
        let d = d.to_str().expect("utf-8 name");
        assert!(target(d).is_some(), "corpus/{d}: not a target");
    }
    let count = manifest.matches("[[bin]]").count();
    assert_eq!(count, TARGETS.len(), "[[bin]] entries");
}

fn session() -> SessionRecord {
    SessionRecord {
        id: 7,
        kind: 1,
        csrf_hash: [3; 32],
        login_address: "mjl☺@example.org".into(),
        created: 1_700_000_000_000,
        last_used: 1_700_000_100_000,
        expires: 1_700_086_500_000,
        created_ip: Some("2001:db8::1".parse().expect("ip")),
        created_agent: "Mozilla/5.0".into(),
        last_ip: Some("192.0.2.1".parse().expect("ip")),
        last_agent: String::new(),
    }
}

fn account() -> AccountRecord {
    AccountRecord {
        name: "demo".into(),
        full_name: "Demo User".into(),
        addresses: vec!["demo@localhost".into(), "d@example.org".into()],
        password: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        login_disabled: Some("unpaid".into()),
        created: 0,
        destinations: [
            (
                "demo@localhost".to_string(),
                postern::store::codec::Destination::default(),
            ),
            (
                "d@example.org".to_string(),
                postern::store::codec::Destination::default(),
            ),
        ]
        .into_iter()
        .collect(),
    }
}

/// The record_decode seeds are today's encodings of fixed records. Set
/// `POSTERN_BLESS=1` to rewrite them after a deliberate format change (with a
/// new version number and a decode arm for the old one, see store::codec).
#[test]
fn record_seeds_are_the_current_encoding() {
    let dir = fuzz_dir().join("corpus/record_decode");
    let seeds = [
        ("session", codec::encode(&session()).expect("encode")),
        ("account", codec::encode(&account()).expect("encode")),
    ];
    for (name, enc) in seeds {
        let path = dir.join(name);
        if std::env::var_os("POSTERN_BLESS").is_some() {
            fs::create_dir_all(&dir).expect("mkdir");
            fs::write(&path, &enc).expect("write seed");
        }
        let seed = fs::read(&path).expect("seed present (POSTERN_BLESS=1 to write)");
        assert_eq!(seed, enc, "{name}: stored format changed");
    }
    let s: SessionRecord =
        codec::decode(&fs::read(dir.join("session")).expect("seed")).expect("decodes");
    assert_eq!(s, session());
    let a: AccountRecord =
        codec::decode(&fs::read(dir.join("account")).expect("seed")).expect("decodes");
    assert_eq!(a, account());
    // The format-1 encoding of the same account (before destinations) still
    // decodes, upgraded with a default destination per address.
    let old: AccountRecord =
        codec::decode(&fs::read(dir.join("account-v1")).expect("seed")).expect("v1 decodes");
    assert_eq!(old, account());
}

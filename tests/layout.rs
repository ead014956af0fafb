//! The layout ARCHITECTURE.md promises, held by a test: no import circle between the modules of
//! any crate, and the crates that must stay free of a runtime stay free of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 5] = [
    "crates/wire/src",
    "crates/report/src",
    "crates/testkit/src",
    "server/src",
    "loadgen/src",
];

/// Every `.rs` file under `dir`, as (module path, source without comments and test modules).
fn modules(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read the source folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = module_name(dir, &path);
                // `foo/tests.rs` is foo's test module: not part of the graph.
                if name.ends_with("::tests") || name == "tests" {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read a source file");
                out.insert(name, code_only(&text));
            }
        }
    }
    out
}

fn module_name(root: &Path, file: &Path) -> String {
    let rel: PathBuf = file
        .strip_prefix(root)
        .expect("under root")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The source without `//` comments and without a trailing `#[cfg(test)] mod tests`.
fn code_only(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules each module names through `crate::…` (the deepest existing one), itself and its
/// ancestors left out.
fn graph(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|k| parts[..k].join("::"))
            .find(|candidate| mods.contains_key(candidate))
    };
    let mut g = BTreeMap::new();
    for (name, code) in mods {
        let mut deps = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut paths = vec![path.trim_end_matches(':').to_string()];
            // `crate::a::{b, c::d}`: each item of the group.
            if let Some(group) = rest[path.len()..].strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let item: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    paths.push(format!("{path}{item}"));
                }
            }
            for p in paths {
                if let Some(m) = resolve(&p)
                    && m != *name
                    && !name.starts_with(&format!("{m}::"))
                {
                    deps.insert(m);
                }
            }
        }
        g.insert(name.clone(), deps);
    }
    g
}

/// A cycle in `g`, if there is one (depth-first search with colours).
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        v: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(v.to_string(), 1);
        path.push(v.to_string());
        for w in g.get(v).into_iter().flatten() {
            match state.get(w.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|p| p == w).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(w.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(w, g, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(v.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for v in g.keys() {
        if state.get(v.as_str()).copied().unwrap_or(0) == 0
            && let Some(c) = visit(v, g, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_module_imports_itself_through_another() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in CRATES {
        let mods = modules(&root.join(dir));
        assert!(
            mods.len() > 1 || dir.contains("testkit"),
            "{dir}: no modules"
        );
        if let Some(cycle) = find_cycle(&graph(&mods)) {
            panic!("{dir}: import circle {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mods: BTreeMap<String, String> = [
        ("a".to_string(), "use crate::b::X;".to_string()),
        ("b".to_string(), "use crate::{c::Y, d};".to_string()),
        ("c".to_string(), "fn f() { crate::a::g() }".to_string()),
        ("d".to_string(), code_only("// crate::a is only a comment")),
    ]
    .into();
    let g = graph(&mods);
    assert_eq!(g["b"], BTreeSet::from(["c".to_string(), "d".to_string()]));
    assert!(g["d"].is_empty());
    let cycle = find_cycle(&g).expect("a → b → c → a");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
}

#[test]
fn the_report_and_wire_crates_carry_no_runtime_or_server() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deps = |krate: &str| -> String {
        let text = std::fs::read_to_string(root.join(krate).join("Cargo.toml")).expect("manifest");
        let deps = text.split("[dependencies]").nth(1).unwrap_or("");
        deps.split("\n[").next().unwrap_or("").to_string()
    };
    let report = deps("crates/report");
    for banned in ["tokio", "hyper", "axum", "socketioxide", "reqwest"] {
        assert!(
            !report.contains(banned),
            "crates/report depends on {banned}"
        );
    }
    let wire = deps("crates/wire");
    for banned in ["hyper", "axum", "socketioxide", "prometheus", "chat-server"] {
        assert!(!wire.contains(banned), "crates/wire depends on {banned}");
    }
}

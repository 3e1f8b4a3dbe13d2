//! The server's modules form layers: each imports only modules below it, so no two modules
//! import each other, directly or around a circle. This reads every `crate::` path in
//! `server/src` (comments and strings left out), builds the graph of top-level modules, and
//! fails naming each import that goes up a layer or closes a cycle, with its file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first, as docs/architecture.md draws them: a module imports only modules
/// of the layers below its own (so no two import each other). A new module goes in its layer here.
const LAYERS: &[&[&str]] = &[
    &["oci", "config"],
    &["kube", "web", "egress", "cli", "assets"],
    &["storage", "limits"],
    &["ops", "auth", "events", "gc", "layers"],
    &["registry", "quota"],
    &["imagestream"],
    &["secrets", "prune", "immutability", "signatures"],
    &["webhooks", "import"],
    &["console", "admin", "openapi"],
    &["upstream"],
    &["crate"],
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a file belongs to (`auth` for `src/auth/api/users.rs`); `crate` for
/// `lib.rs` and `main.rs`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    let first = first.to_str().unwrap();
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => "crate".to_owned(),
        Some(module) => module.to_owned(),
        None => first.to_owned(),
    }
}

/// The text of a Rust file without comments, string literals and character literals, so that
/// a path written in a comment or a message does not count as an import.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        if rest.starts_with(&['/', '/']) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if rest.starts_with(&['/', '*']) {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if chars[i] == 'r' && matches!(rest.get(1), Some('"' | '#')) {
            // A raw string: r"…", r#"…"#, …
            let hashes = rest[1..].iter().take_while(|c| **c == '#').count();
            if rest.get(1 + hashes) != Some(&'"') {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            i += 2 + hashes;
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|c| *c == '#') {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push_str("\"\"");
        } else if chars[i] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if chars[i] == '\'' && rest.get(2) == Some(&'\'') {
            i += 3;
        } else if chars[i] == '\'' && rest.get(1) == Some(&'\\') {
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The top-level modules named by `crate::` paths in `code`, including those inside braces
/// (`use crate::{a::X, b::Y}`).
fn imported_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // The first segment of each item of the group, at brace depth 0.
            let mut depth = 0;
            let mut segment_start = true;
            let mut name = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => segment_start = true,
                    c if segment_start && (c.is_alphanumeric() || c == '_') => name.push(c),
                    _ if segment_start && !name.is_empty() => {
                        found.insert(std::mem::take(&mut name));
                        segment_start = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                found.insert(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// Module -> the modules it imports, and for each edge one file that makes it.
fn module_graph() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        let edges = graph.entry(from.clone()).or_default();
        for to in imported_modules(&code) {
            // `crate::Config`-style items of lib.rs belong to `crate`; `self`/`super` are not
            // modules of their own.
            let to = if modules.contains(&to) {
                to
            } else {
                "crate".to_owned()
            };
            if to != from {
                edges
                    .entry(to)
                    .or_insert_with(|| file.strip_prefix(&src).unwrap().to_path_buf());
            }
        }
    }
    graph
}

/// Strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeMap<String, PathBuf>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeMap<String, PathBuf>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        let next = state.index.len();
        state.index.insert(node, next);
        state.low.insert(node, next);
        state.stack.push(node);
        state.on_stack.insert(node);
        let graph = state.graph;
        for target in graph.get(node).into_iter().flat_map(|edges| edges.keys()) {
            let target = target.as_str();
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[node].min(state.low[target]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(target) {
                let low = state.low[node].min(state.index[target]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(top);
                component.push(top.to_owned());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = module_graph();
    assert!(
        graph.len() > 10,
        "the scan found too few modules: {graph:?}"
    );
    let mut in_cycles = BTreeMap::new();
    for component in cycles(&graph) {
        let members: BTreeSet<&String> = component.iter().collect();
        for from in &component {
            for (to, file) in &graph[from] {
                if members.contains(to) {
                    in_cycles.insert(format!("{from} -> {to}"), file.clone());
                }
            }
        }
    }
    let closing: Vec<String> = in_cycles
        .iter()
        .map(|(edge, file)| format!("{edge} ({})", file.display()))
        .collect();
    assert!(
        closing.is_empty(),
        "imports that close a module cycle:\n{}",
        closing.join("\n")
    );
}

#[test]
fn every_module_imports_only_the_layers_below_its_own() {
    let layer_of = |module: &str| LAYERS.iter().position(|layer| layer.contains(&module));
    let graph = module_graph();
    let mut wrong = Vec::new();
    for (module, imports) in &graph {
        let Some(layer) = layer_of(module) else {
            wrong.push(format!(
                "{module} is in no layer: add it to LAYERS and docs/architecture.md"
            ));
            continue;
        };
        for (to, file) in imports {
            if layer_of(to).is_none_or(|below| below >= layer) {
                wrong.push(format!(
                    "{module} imports {to}, not below it ({})",
                    file.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_scan_sees_imports_in_groups_and_not_in_comments() {
    let code = code_only(
        "use crate::{a::X, b::{Y, Z}};\n// crate::c in a comment\nlet s = \"crate::d\";\n\
         let raw = r#\"crate::e\"#; f(crate::g::h()); let c = '\"'; crate::i::J;",
    );
    let found: Vec<String> = imported_modules(&code).into_iter().collect();
    assert_eq!(found, ["a", "b", "g", "i"]);
}

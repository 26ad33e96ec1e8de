//! The gateway's shape: a context's routes never import another context
//! (they share `http`, `auth`, `state`), the generic command endpoint
//! imports request bodies and use cases but no routes, and the document
//! assembler (`openapi`) is imported by nothing but the router — so a new
//! context copies one context's folder without touching another's, and
//! there is no import cycle between the gateway's modules.

use std::path::Path;

const CONTEXTS: &[&str] = &[
    "billing",
    "jobs",
    "planner",
    "system",
    "tenancy",
    "commands_api",
    "writer",
];

fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(sources(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn contexts_import_no_other_context_and_nothing_imports_the_document() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = vec![];
    for ctx in CONTEXTS {
        for (file, text) in sources(&src.join(ctx)) {
            for other in CONTEXTS.iter().filter(|o| *o != ctx) {
                let allowed = |line: &str| {
                    // The command endpoint takes the tenancy command bodies.
                    *ctx == "commands_api" && line.contains("crate::tenancy::bodies")
                };
                for line in text.lines() {
                    if line.contains(&format!("crate::{other}::")) && !allowed(line) {
                        bad.push(format!("{file}: {}", line.trim()));
                    }
                    if line.contains("use crate::{") && line.contains(other) {
                        bad.push(format!("{file}: {}", line.trim()));
                    }
                }
            }
            for line in text.lines() {
                if line.contains("crate::openapi") || line.contains("crate::app::") {
                    bad.push(format!("{file}: {}", line.trim()));
                }
                // Route modules of tenancy are not imported by the endpoint.
                if *ctx == "commands_api"
                    && line.contains("crate::tenancy::")
                    && !line.contains("crate::tenancy::bodies")
                {
                    bad.push(format!("{file}: {}", line.trim()));
                }
            }
        }
    }
    for (file, text) in sources(&src.join("http"))
        .into_iter()
        .chain(sources(&src.join("auth")))
    {
        for line in text.lines() {
            let names_context = CONTEXTS
                .iter()
                .any(|c| line.contains(&format!("crate::{c}::")));
            if names_context || line.contains("crate::openapi") {
                bad.push(format!("{file}: {}", line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "imports across contexts:\n{}",
        bad.join("\n")
    );
}

#[test]
fn handlers_call_use_cases_not_the_bus() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = vec![];
    for ctx in CONTEXTS {
        for (file, text) in sources(&src.join(ctx)) {
            for line in text.lines() {
                if line.contains("bus.execute") || line.contains("bus.load") {
                    bad.push(format!("{file}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "handlers reaching past their use case:\n{}",
        bad.join("\n")
    );
}

//! Reading a component's imports and exports without compiling it, and deciding whether this host accepts it.
//!
//! The world is the permission manifest: a policy may import WASI 0.2 (linked with an empty context) and the
//! `clearml:queue-policy/host` interface, nothing else; it must export `clearml:queue-policy/policy` at a version
//! this host serves. Checking this on the raw bytes is exact (the names are in the component's import/export
//! sections) and cheap, so a refused component never costs a compile.

use sha2::{Digest, Sha256};
use wasmparser::{Encoding, Parser, Payload};

use crate::error::LoadError;

/// The WIT package every policy is built against.
pub const PACKAGE: &str = "clearml:queue-policy";
/// WASI 0.2 packages a policy may import (std runtimes in every language import some of these).
const WASI_P2_PACKAGES: &[&str] = &[
    "wasi:cli",
    "wasi:io",
    "wasi:clocks",
    "wasi:random",
    "wasi:filesystem",
    "wasi:sockets",
];

/// What a component declares, read from its bytes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentInfo {
    /// Top-level import names, e.g. `wasi:cli/environment@0.2.6`.
    pub imports: Vec<String>,
    /// Top-level export names, e.g. `clearml:queue-policy/policy@0.1.0`.
    pub exports: Vec<String>,
    /// Size of the component in bytes.
    pub size: usize,
    /// sha256 of the component bytes, lowercase hex.
    pub sha256: String,
}

/// The world version a component implements, once accepted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Accepted {
    /// `queue-policy`
    pub world: &'static str,
    /// The version of `clearml:queue-policy/policy` it exports, e.g. `0.1.0`.
    pub version: String,
}

/// sha256 of some bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Read imports and exports from the top level of a component.
pub fn read_component(policy: &str, bytes: &[u8]) -> Result<ComponentInfo, LoadError> {
    let not_a_component = |reason: String| LoadError::NotAComponent {
        policy: policy.to_string(),
        reason,
    };
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    // parse_all walks nested modules/components inline; each starts with `Version` and ends with `End`, so depth 1
    // is the outer component.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| not_a_component(e.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err(not_a_component(
                        "this is a core WebAssembly module; policies must be components (build for \
                         wasm32-wasip2, or wrap the module with `wasm-tools component new`)"
                            .to_string(),
                    ));
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| not_a_component(e.to_string()))?;
                    imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| not_a_component(e.to_string()))?;
                    exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(not_a_component("truncated component".to_string()));
    }
    Ok(ComponentInfo {
        imports,
        exports,
        size: bytes.len(),
        sha256: sha256_hex(bytes),
    })
}

/// Split `ns:pkg/iface@1.2.3` into (`ns:pkg`, `iface`, `Some("1.2.3")`).
fn split_name(name: &str) -> (&str, &str, Option<&str>) {
    let (path, version) = match name.split_once('@') {
        Some((p, v)) => (p, Some(v)),
        None => (name, None),
    };
    match path.split_once('/') {
        Some((pkg, iface)) => (pkg, iface, version),
        None => (path, "", version),
    }
}

/// Whether `version` (x.y.z) is served by a host at `supported`: same major, and for 0.x the same minor.
fn compatible(version: &str, supported: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split(['.', '-', '+']);
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parse(version), parse(supported)) {
        (Some((0, minor)), Some((0, s_minor))) => minor == s_minor,
        (Some((major, _)), Some((s_major, _))) => major == s_major,
        _ => false,
    }
}

/// Decide whether this host accepts the component: allowed imports only, and the policy export at a served version.
pub fn check(policy: &str, info: &ComponentInfo) -> Result<Accepted, LoadError> {
    let supported = crate::WIT_PACKAGE_VERSION;
    for import in &info.imports {
        let (pkg, iface, version) = split_name(import);
        let allowed = if WASI_P2_PACKAGES.contains(&pkg) {
            version.is_some_and(|v| v.starts_with("0.2."))
        } else if pkg == PACKAGE {
            matches!(iface, "host" | "types") && version.is_some_and(|v| compatible(v, supported))
        } else {
            false
        };
        if !allowed {
            return Err(LoadError::ForbiddenImport {
                policy: policy.to_string(),
                import: import.clone(),
            });
        }
    }
    let policy_export = info.exports.iter().find_map(|e| {
        let (pkg, iface, version) = split_name(e);
        (pkg == PACKAGE && iface == "policy").then(|| version.unwrap_or("").to_string())
    });
    match policy_export {
        None => Err(LoadError::MissingExport {
            policy: policy.to_string(),
            exports: if info.exports.is_empty() {
                "nothing".to_string()
            } else {
                info.exports.join(", ")
            },
        }),
        Some(found) if !compatible(&found, supported) => Err(LoadError::IncompatibleVersion {
            policy: policy.to_string(),
            found,
            supported: supported.to_string(),
        }),
        Some(version) => Ok(Accepted {
            world: "queue-policy",
            version,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(imports: &[&str], exports: &[&str]) -> ComponentInfo {
        ComponentInfo {
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: exports.iter().map(|s| s.to_string()).collect(),
            size: 0,
            sha256: String::new(),
        }
    }

    #[test]
    fn accepts_wasi_and_host_imports() {
        let i = info(
            &[
                "wasi:cli/environment@0.2.6",
                "wasi:io/streams@0.2.0",
                "clearml:queue-policy/types@0.1.0",
                "clearml:queue-policy/host@0.1.0",
            ],
            &["clearml:queue-policy/policy@0.1.0"],
        );
        assert_eq!(check("p", &i).unwrap().version, "0.1.0");
    }

    #[test]
    fn refuses_wasi_http_naming_it() {
        let i = info(
            &["wasi:http/outgoing-handler@0.3.0"],
            &["clearml:queue-policy/policy@0.1.0"],
        );
        let err = check("p", &i).unwrap_err().to_string();
        assert!(err.contains("`wasi:http/outgoing-handler@0.3.0`"), "{err}");
    }

    #[test]
    fn refuses_non_wasi_p2_versions_and_unknown_packages() {
        for import in [
            "wasi:http/outgoing-handler@0.2.0",
            "wasi:cli/environment@0.3.0",
            "clearml:queue-policy/secrets@0.1.0",
            "acme:net/socket",
        ] {
            let i = info(&[import], &["clearml:queue-policy/policy@0.1.0"]);
            assert!(
                matches!(check("p", &i), Err(LoadError::ForbiddenImport { import: ref got, .. }) if got == import),
                "{import}"
            );
        }
    }

    #[test]
    fn refuses_other_minor_versions_of_the_world() {
        let i = info(&[], &["clearml:queue-policy/policy@0.0.9"]);
        let err = check("p", &i).unwrap_err();
        assert!(
            matches!(err, LoadError::IncompatibleVersion { .. }),
            "{err}"
        );
        let i = info(&[], &["clearml:queue-policy/policy@0.1.7"]);
        assert!(check("p", &i).is_ok());
    }

    #[test]
    fn refuses_wrong_world() {
        let i = info(&[], &["wasi:cli/run@0.2.0"]);
        let err = check("p", &i).unwrap_err().to_string();
        assert!(
            err.contains("does not export `clearml:queue-policy/policy`"),
            "{err}"
        );
        assert!(err.contains("wasi:cli/run@0.2.0"), "{err}");
    }

    #[test]
    fn core_modules_and_garbage_are_not_components() {
        let core_module = b"\0asm\x01\0\0\0";
        let err = read_component("p", core_module).unwrap_err().to_string();
        assert!(err.contains("core WebAssembly module"), "{err}");
        let err = read_component("p", b"not wasm at all").unwrap_err();
        assert!(matches!(err, LoadError::NotAComponent { .. }));
    }
}

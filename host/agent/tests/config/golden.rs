//! Golden files under `tests/config/golden/`: compared exactly; `BLESS=1` rewrites them, refused under `CI` so a
//! CI run can never bless its own output.

use std::fs;
use std::path::PathBuf;

/// The project's one BLESS rule (`policy_cases::bless_requested`): `BLESS=1` rewrites, refused under `CI`.
fn bless() -> bool {
    let env = |k: &str| cache_paths::process_env(k).map(|v| v.to_string_lossy().into_owned());
    policy_cases::bless_requested(false, env).unwrap_or_else(|e| panic!("{e}"))
}

fn golden_path(name: &str) -> PathBuf {
    cache_paths::package_dir(cache_paths::process_env, env!("CARGO_MANIFEST_DIR"))
        .join("tests/config/golden")
        .join(name)
}

/// Compare `actual` with the golden file `name`; the mismatch (or the missing file) is returned, not panicked, so
/// a table of cases reports every difference at once.
pub fn compare(name: &str, actual: &str) -> Result<(), String> {
    let path = golden_path(name);
    if bless() {
        fs::create_dir_all(path.parent().expect("golden files live in a folder")).unwrap();
        fs::write(&path, actual).unwrap();
        return Ok(());
    }
    match fs::read_to_string(&path) {
        Ok(expected) if expected == actual => Ok(()),
        Ok(expected) => Err(format!(
            "{} differs (BLESS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        )),
        Err(_) => Err(format!(
            "{} is missing; BLESS=1 records it as:\n{actual}",
            path.display()
        )),
    }
}

/// Panic with every failure of a table of golden comparisons.
pub fn assert_all(results: Vec<Result<(), String>>) {
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

//! Each case as its own test: a `harness = false` test target's `main` hands its cases to [`run_as_tests`], and
//! `cargo test` lists, filters and reports them by case name like `#[test]` functions.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::bless::bless_requested;
use crate::case::{Case, Outcome, Verdict, judge, load_cases};

/// Run every case under `cases_dir` as one test each. `evaluate` runs the policy on a case twice (the two
/// outcomes [`judge`] compares for determinism). `env` looks up `BLESS` and `CI` (pass `|k| std::env::var(k).ok()`
/// from the test's `main`). A folder that cannot be loaded is one failing test that says why.
pub fn run_as_tests(
    cases_dir: &Path,
    env: impl Fn(&str) -> Option<String>,
    evaluate: impl Fn(&Case) -> (Outcome, Outcome) + Send + Sync + 'static,
) -> ExitCode {
    let args = Arguments::from_args();
    let bless = bless_requested(false, env);
    let trials = match (load_cases(cases_dir), bless) {
        (Err(err), _) => vec![Trial::test("load-cases", move || {
            Err(Failed::from(err.to_string()))
        })],
        (Ok(_), Err(err)) => vec![Trial::test("bless", move || {
            Err(Failed::from(err.to_string()))
        })],
        (Ok(cases), Ok(bless)) => {
            let evaluate = Arc::new(evaluate);
            cases
                .into_iter()
                .map(|case| {
                    let evaluate = Arc::clone(&evaluate);
                    Trial::test(case.name.clone(), move || {
                        let (first, second) = evaluate(&case);
                        match judge(&case, &first, &second, bless) {
                            Verdict::Pass | Verdict::Blessed => Ok(()),
                            Verdict::Fail(why) => {
                                Err(Failed::from(format!("{}: {why}", case.dir.display())))
                            }
                        }
                    })
                })
                .collect()
        }
    };
    libtest_mimic::run(&args, trials).exit_code()
}

//! The one BLESS rule: blessing is asked for by a flag or `BLESS=1`, and refused under `CI`.

/// Blessing was asked for where it must not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlessError {
    /// `CI` is set: a CI run checks expectations and never rewrites them.
    #[error(
        "blessing refused: CI={ci} is set (a CI run must check the golden files, not rewrite them); \
         bless locally and commit the reviewed expectations"
    )]
    InCi {
        /// The value of `CI`.
        ci: String,
    },
}

/// Whether to bless: `flag` (a runner's `--bless`) or `BLESS` set to anything but empty or `0`. Refused when `CI`
/// is set to anything but empty, `0` or `false`. `env` looks a variable up; binaries and test mains pass
/// `std::env::var`, tests pass a map, so the rule is tested without touching the process environment.
pub fn bless_requested(
    flag: bool,
    env: impl Fn(&str) -> Option<String>,
) -> Result<bool, BlessError> {
    let set = |name: &str, off: &[&str]| {
        env(name).filter(|v| !v.is_empty() && !off.contains(&v.as_str()))
    };
    let wanted = flag || set("BLESS", &["0"]).is_some();
    match set("CI", &["0", "false"]) {
        Some(ci) if wanted => Err(BlessError::InCi { ci }),
        _ => Ok(wanted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn bless_comes_from_the_flag_or_bless_1() {
        assert_eq!(bless_requested(false, env(&[])), Ok(false));
        assert_eq!(bless_requested(true, env(&[])), Ok(true));
        assert_eq!(bless_requested(false, env(&[("BLESS", "1")])), Ok(true));
        assert_eq!(bless_requested(false, env(&[("BLESS", "0")])), Ok(false));
        assert_eq!(bless_requested(false, env(&[("BLESS", "")])), Ok(false));
    }

    #[test]
    fn ci_refuses_blessing_but_not_checking() {
        let err = bless_requested(false, env(&[("BLESS", "1"), ("CI", "true")])).unwrap_err();
        assert!(err.to_string().contains("CI=true"), "{err}");
        assert!(bless_requested(true, env(&[("CI", "1")])).is_err());
        assert_eq!(bless_requested(false, env(&[("CI", "true")])), Ok(false));
        assert_eq!(bless_requested(true, env(&[("CI", "false")])), Ok(true));
    }
}

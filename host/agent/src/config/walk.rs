//! Reading a YAML tree strictly, with the path of every value at hand. serde's derive would give "unknown field"
//! without the path and "invalid type: sequence, expected a map" without the key; walking the tree by hand gives
//! `agentk8sglue.maxPods: expected an integer, found a string` and "did you mean" suggestions.

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use super::ConfigError;

/// The keys one map of the values shape takes.
pub(super) struct Keys {
    /// Keys the agent reads.
    pub known: &'static [&'static str],
    /// Keys accepted and ignored (chart-only, or Enterprise features this agent does not implement).
    pub ignored: &'static [&'static str],
}

/// `path.key`, or `key` at the top level.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The candidate a misspelt `key` most likely meant, if any is close enough. Case is ignored (`maxpods` means
/// `maxPods`); the threshold keeps unrelated words from being suggested.
pub(super) fn suggest<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let key = key.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&key, &c.to_lowercase()), *c))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The YAML type of a value, as error messages name it.
pub(super) fn type_name(value: &Yaml) -> &'static str {
    match value {
        Yaml::Null => "null",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(n) if n.is_f64() => "a number",
        Yaml::Number(_) => "an integer",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a map",
        Yaml::Tagged(_) => "a tagged value",
    }
}

/// A map key as a string. Helm (Go YAML) stringifies scalar keys, so `1: {}` under `queues` is queue `"1"`.
fn key_string(key: &Yaml, path: &str) -> Result<String, ConfigError> {
    match key {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        other => Err(ConfigError::InvalidType {
            path: path.to_owned(),
            expected: "string keys",
            found: type_name(other),
        }),
    }
}

/// One value and where it is.
pub(super) struct Node<'a> {
    pub path: String,
    pub value: &'a Yaml,
}

/// A map of the values shape whose keys have been checked.
pub(super) struct Map<'a> {
    path: String,
    entries: Vec<(String, &'a Yaml)>,
}

impl<'a> Map<'a> {
    /// Read `node` (absent or `null` = empty) as a map whose every key is one of `keys`. Unknown keys are an error
    /// (the first in file order, with a suggestion); ignored keys are appended to `ignored` as full paths.
    pub fn strict(
        node: Option<Node<'a>>,
        path: &str,
        keys: &Keys,
        ignored: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let map = Self::free(node, path)?;
        for (key, _) in &map.entries {
            if keys.known.contains(&key.as_str()) {
                continue;
            }
            if keys.ignored.contains(&key.as_str()) {
                ignored.push(join(path, key));
                continue;
            }
            let candidates: Vec<&str> = keys.known.iter().chain(keys.ignored).copied().collect();
            return Err(ConfigError::UnknownKey {
                path: join(path, key),
                suggestion: suggest(key, &candidates).map(str::to_owned),
                known: keys.known.join(", "),
            });
        }
        Ok(map)
    }

    /// Read `node` (absent or `null` = empty) as a map with any keys (queue names, plugin names).
    pub fn free(node: Option<Node<'a>>, path: &str) -> Result<Self, ConfigError> {
        let path = path.to_owned();
        let mapping = match node.map(|n| n.value) {
            None | Some(Yaml::Null) => {
                return Ok(Self {
                    path,
                    entries: Vec::new(),
                });
            }
            Some(Yaml::Mapping(mapping)) => mapping,
            Some(other) => {
                return Err(ConfigError::InvalidType {
                    path,
                    expected: "a map",
                    found: type_name(other),
                });
            }
        };
        let entries = mapping
            .iter()
            .map(|(k, v)| Ok((key_string(k, &path)?, v)))
            .collect::<Result<_, ConfigError>>()?;
        Ok(Self { path, entries })
    }

    /// The value of `key`, unless it is absent or `null` (Helm's `default` treats both as unset).
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        self.entries
            .iter()
            .find(|(k, v)| k == key && !v.is_null())
            .map(|(k, v)| Node {
                path: join(&self.path, k),
                value: v,
            })
    }

    /// Every entry, in file order, `null` values included (a queue may be written `red:` with nothing under it).
    pub fn entries(&self) -> impl Iterator<Item = (&str, Node<'a>)> + '_ {
        self.entries.iter().map(|(k, v)| {
            (
                k.as_str(),
                Node {
                    path: join(&self.path, k),
                    value: v,
                },
            )
        })
    }
}

impl<'a> Node<'a> {
    fn invalid_type(&self, expected: &'static str) -> ConfigError {
        ConfigError::InvalidType {
            path: self.path.clone(),
            expected,
            found: type_name(self.value),
        }
    }

    /// A string. Numbers are not turned into strings: `defaultImage: 3` is a mistake worth reporting.
    pub fn string(&self) -> Result<&'a str, ConfigError> {
        self.value
            .as_str()
            .ok_or_else(|| self.invalid_type("a string"))
    }

    /// A non-empty string (an image, a URL, a path).
    pub fn non_empty_string(&self) -> Result<&'a str, ConfigError> {
        let s = self.string()?;
        if s.trim().is_empty() {
            return Err(ConfigError::InvalidValue {
                path: self.path.clone(),
                problem: "must not be empty".to_owned(),
            });
        }
        Ok(s)
    }

    /// `true` or `false` (YAML 1.2: `yes`/`no` are strings, and reported as such).
    pub fn bool(&self) -> Result<bool, ConfigError> {
        self.value
            .as_bool()
            .ok_or_else(|| self.invalid_type("true or false"))
    }

    /// A whole number from `min` up to `u32::MAX`.
    pub fn u32_at_least(&self, min: u32) -> Result<u32, ConfigError> {
        let Yaml::Number(n) = self.value else {
            return Err(self.invalid_type("an integer"));
        };
        let out_of_range = || ConfigError::InvalidValue {
            path: self.path.clone(),
            problem: format!("expected an integer from {min} to {}, found {n}", u32::MAX),
        };
        if n.is_f64() {
            return Err(self.invalid_type("an integer"));
        }
        let value = n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(out_of_range)?;
        if value < min {
            return Err(out_of_range());
        }
        Ok(value)
    }

    /// A finite number (integer or not) that is >= 0, or > 0 unless `zero_allowed`.
    pub fn non_negative_number(&self, zero_allowed: bool) -> Result<f64, ConfigError> {
        let value = match self.value {
            Yaml::Number(n) => n.as_f64().filter(|v| v.is_finite()),
            _ => None,
        }
        .ok_or_else(|| self.invalid_type("a number"))?;
        if value < 0.0 || (!zero_allowed && value == 0.0) {
            let bound = if zero_allowed {
                "0 or more"
            } else {
                "more than 0"
            };
            return Err(ConfigError::InvalidValue {
                path: self.path.clone(),
                problem: format!("expected a number {bound}, found {value}"),
            });
        }
        Ok(value)
    }

    /// The value as JSON (templates, plugin configs). Keys are stringified as Helm does; tags and non-finite
    /// numbers have no JSON form and are errors naming their path.
    pub fn json(&self) -> Result<Json, ConfigError> {
        to_json(self.value, &self.path)
    }
}

fn to_json(value: &Yaml, path: &str) -> Result<Json, ConfigError> {
    Ok(match value {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Json::Number)
                    .ok_or_else(|| ConfigError::InvalidValue {
                        path: path.to_owned(),
                        problem: format!("{n} is not a finite number"),
                    })?
            }
        }
        Yaml::String(s) => Json::String(s.clone()),
        Yaml::Sequence(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_json(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(mapping) => {
            let mut out = serde_json::Map::new();
            for (k, v) in mapping {
                let key = key_string(k, path)?;
                let value = to_json(v, &join(path, &key))?;
                out.insert(key, value);
            }
            Json::Object(out)
        }
        Yaml::Tagged(tagged) => {
            return Err(ConfigError::InvalidValue {
                path: path.to_owned(),
                problem: format!("YAML tags ({}) are not supported", tagged.tag),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Yaml {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn suggestions_catch_typos_and_case_but_not_unrelated_words() {
        let keys = ["templateOverrides", "queueSettings", "policies"];
        assert_eq!(
            suggest("templateOverides", &keys),
            Some("templateOverrides")
        );
        assert_eq!(suggest("queuesettings", &keys), Some("queueSettings"));
        assert_eq!(suggest("policy", &keys), Some("policies"));
        assert_eq!(suggest("nodeSelector", &keys), None);
    }

    #[test]
    fn integers_are_checked_for_type_sign_and_range() {
        let at = |text: &str| {
            let value = yaml(text);
            let node = Node {
                path: "a.maxPods".into(),
                value: &value,
            };
            node.u32_at_least(1).map_err(|e| e.to_string())
        };
        assert_eq!(at("3"), Ok(3));
        assert_eq!(
            at("'3'").unwrap_err(),
            "a.maxPods: expected an integer, found a string"
        );
        assert_eq!(
            at("1.5").unwrap_err(),
            "a.maxPods: expected an integer, found a number"
        );
        assert_eq!(
            at("0").unwrap_err(),
            "a.maxPods: expected an integer from 1 to 4294967295, found 0"
        );
        assert_eq!(
            at("-2").unwrap_err(),
            "a.maxPods: expected an integer from 1 to 4294967295, found -2"
        );
        assert!(at("5000000000").is_err());
    }

    #[test]
    fn numbers_of_seconds_accept_fractions_and_refuse_zero_when_asked() {
        let value = yaml("0.5");
        let node = Node {
            path: "p".into(),
            value: &value,
        };
        assert_eq!(node.non_negative_number(false).unwrap(), 0.5);
        let zero = yaml("0");
        let node = Node {
            path: "p".into(),
            value: &zero,
        };
        assert_eq!(node.non_negative_number(true).unwrap(), 0.0);
        assert_eq!(
            node.non_negative_number(false).unwrap_err().to_string(),
            "p: expected a number more than 0, found 0"
        );
    }

    #[test]
    fn json_conversion_names_the_path_of_what_json_cannot_hold() {
        let value = yaml("a:\n  b: [1, !custom x]\n");
        let node = Node {
            path: "root".into(),
            value: &value,
        };
        assert_eq!(
            node.json().unwrap_err().to_string(),
            "root.a.b[1]: YAML tags (!custom) are not supported"
        );
        let value = yaml("{1: one, true: yes, x: .inf}");
        let node = Node {
            path: "root".into(),
            value: &value,
        };
        assert_eq!(
            node.json().unwrap_err().to_string(),
            "root.x: .inf is not a finite number"
        );
    }

    #[test]
    fn strict_maps_record_ignored_keys_and_refuse_unknown_ones() {
        const KEYS: Keys = Keys {
            known: &["maxPods"],
            ignored: &["multiNode"],
        };
        let value = yaml("maxPods: 1\nmultiNode: {enabled: true}\n");
        let mut ignored = Vec::new();
        let node = Node {
            path: "q".into(),
            value: &value,
        };
        Map::strict(Some(node), "q", &KEYS, &mut ignored).unwrap();
        assert_eq!(ignored, ["q.multiNode"]);
        let value = yaml("maxPod: 1\n");
        let node = Node {
            path: "q".into(),
            value: &value,
        };
        let err = Map::strict(Some(node), "q", &KEYS, &mut ignored)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "q.maxPod: unknown key (did you mean maxPods?)"
        );
    }
}

//! Each queue's policy chain, built from the values: `template-overrides` (with the queue's `templateOverrides`)
//! first, then the queue's `policies` in order. Everything is loaded, compiled (or taken from the precompiled cache)
//! and `validate-config`ed here, at start-up, so a bad binding stops the agent before it pops anything and no
//! compile ever happens on a task's path.

use std::collections::BTreeMap;
use std::sync::Arc;

use policy_runtime::{ChainStep, EvalError, Limits, LoadError, Policy, PolicyChain, PolicyEngine};

use crate::config::AgentConfig;
use crate::render::template_overrides_config;

/// The plugin every queue's chain starts with.
pub const TEMPLATE_OVERRIDES: &str = "template-overrides";

/// Why a queue's chain cannot be built. Every variant names the queue and the plugin.
#[derive(Debug, thiserror::Error)]
pub enum PolicySetError {
    /// The binding names a plugin that is neither a default plugin nor in `agentk8sglue.plugins`.
    #[error(
        "agentk8sglue.queues.{queue}.policies[{index}].plugin: unknown plugin {plugin:?} (default plugins: {known}; \
         others must be declared under agentk8sglue.plugins)"
    )]
    UnknownPlugin {
        /// The queue.
        queue: String,
        /// Position in the queue's `policies`.
        index: usize,
        /// The name given.
        plugin: String,
        /// The names that would have worked.
        known: String,
    },
    /// The component could not be loaded (file, digest, imports, compile).
    #[error("plugin {plugin:?}: {source}")]
    Load {
        /// The plugin.
        plugin: String,
        /// What the runtime said.
        #[source]
        source: Box<LoadError>,
    },
    /// A plugin refused its configuration for a queue.
    #[error("agentk8sglue.queues.{queue}: plugin {plugin:?} refused its config: {source}")]
    Config {
        /// The queue.
        queue: String,
        /// The plugin.
        plugin: String,
        /// What `validate-config` returned.
        #[source]
        source: Box<EvalError>,
    },
}

/// The chains of every monitored queue. Immutable; shared behind an `Arc`.
#[derive(Debug, Default)]
pub struct PolicySet {
    chains: BTreeMap<String, Arc<PolicyChain>>,
}

impl PolicySet {
    /// Load every plugin the config uses (once each), build each queue's chain and validate every binding.
    pub fn load(engine: &PolicyEngine, config: &AgentConfig) -> Result<Self, PolicySetError> {
        let mut loaded: BTreeMap<String, Policy> = BTreeMap::new();
        let mut load = |name: &str| -> Result<Policy, PolicySetError> {
            if let Some(policy) = loaded.get(name) {
                return Ok(policy.clone());
            }
            let load_error = |source| PolicySetError::Load {
                plugin: name.to_string(),
                source: Box::new(source),
            };
            let policy = match config.plugins.get(name) {
                Some(source) => {
                    // Loaded by bytes, not `load_file`, so errors and provenance carry the binding's name.
                    let bytes = std::fs::read(&source.file).map_err(|e| {
                        load_error(LoadError::Read {
                            policy: name.to_string(),
                            path: source.file.clone(),
                            source: e,
                        })
                    })?;
                    engine
                        .load(name, &bytes, source.sha256.as_deref(), Limits::default())
                        .map_err(load_error)?
                }
                None => {
                    let bytes = default_plugins::get(name).ok_or_else(|| {
                        PolicySetError::UnknownPlugin {
                            queue: String::new(),
                            index: 0,
                            plugin: name.to_string(),
                            known: known_plugins(config),
                        }
                    })?;
                    engine
                        .load(name, bytes, None, Limits::default())
                        .map_err(load_error)?
                }
            };
            loaded.insert(name.to_string(), policy.clone());
            Ok(policy)
        };

        let mut chains = BTreeMap::new();
        for queue in &config.queues {
            let mut steps = vec![ChainStep {
                policy: load(TEMPLATE_OVERRIDES)?,
                config_json: template_overrides_config(queue).to_string(),
            }];
            for (index, binding) in queue.policies.iter().enumerate() {
                let policy = load(&binding.plugin).map_err(|e| match e {
                    PolicySetError::UnknownPlugin { plugin, known, .. } => {
                        PolicySetError::UnknownPlugin {
                            queue: queue.name.clone(),
                            index,
                            plugin,
                            known,
                        }
                    }
                    other => other,
                })?;
                steps.push(ChainStep {
                    policy,
                    config_json: binding.config.to_string(),
                });
            }
            let chain = PolicyChain::new(steps);
            chain
                .validate_configs(Some(&queue.name))
                .map_err(|source| PolicySetError::Config {
                    queue: queue.name.clone(),
                    plugin: source.policy.clone(),
                    source: Box::new(source),
                })?;
            chains.insert(queue.name.clone(), Arc::new(chain));
        }
        Ok(Self { chains })
    }

    /// Empty chains for every queue: the base pod goes out as rendered (`run --no-policies`, for measuring what
    /// the policies cost).
    pub fn none(config: &AgentConfig) -> Self {
        Self {
            chains: config
                .queues
                .iter()
                .map(|q| (q.name.clone(), Arc::new(PolicyChain::default())))
                .collect(),
        }
    }

    /// The chain of `queue` (a name from the values).
    pub fn chain(&self, queue: &str) -> Option<Arc<PolicyChain>> {
        self.chains.get(queue).cloned()
    }
}

fn known_plugins(config: &AgentConfig) -> String {
    default_plugins::names()
        .map(str::to_string)
        .chain(config.plugins.keys().cloned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The provenance annotation's value: `name@sha256:<digest>` per step, in order.
pub fn provenance(chain: &PolicyChain) -> String {
    chain
        .steps()
        .iter()
        .map(|step| format!("{}@sha256:{}", step.policy.name(), step.policy.sha256()))
        .collect::<Vec<_>>()
        .join(",")
}

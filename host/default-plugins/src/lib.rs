//! # default-plugins: the queue policies that ship inside the agent
//!
//! `build.rs` compiles the plugins of `plugins/` (template-overrides, gpu-sizing, team-labels, guardrails) for
//! `wasm32-wasip2` and embeds them, so `clearml-k8s-agent run` can bind them by name with no files beside it. Other
//! plugins come from files named in the values (`agentk8sglue.plugins.<name>`), not from here.

#![warn(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// The component bytes of the default plugin `name`, if there is one.
pub fn get(name: &str) -> Option<&'static [u8]> {
    PLUGINS
        .iter()
        .find(|(plugin, _)| *plugin == name)
        .map(|(_, bytes)| *bytes)
}

/// Names of the default plugins.
pub fn names() -> impl Iterator<Item = &'static str> {
    PLUGINS.iter().map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_default_plugin_is_a_component() {
        for (name, bytes) in super::PLUGINS {
            // A component starts with the wasm magic and a component-layer version (0x0d 0x00 0x01 0x00).
            assert_eq!(&bytes[..4], b"\0asm", "{name}");
            assert_eq!(&bytes[4..8], &[0x0d, 0x00, 0x01, 0x00], "{name}");
        }
        assert_eq!(super::names().count(), 4);
        assert!(super::get("template-overrides").is_some());
        assert!(super::get("nope").is_none());
    }
}

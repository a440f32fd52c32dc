//! On-disk cache of precompiled components, so compiling (0.2 s for Rust, 10-20 s for Python/JS) happens once per
//! component and engine, never on a task's hot path.
//!
//! Entries are keyed by the component's sha256 and the engine's compatibility hash (wasmtime version + every
//! setting that changes generated code), so a wasmtime bump or a config change never loads a stale artifact.
//! Each entry starts with the sha256 of its payload: a corrupted or truncated entry is detected, discarded and
//! recompiled instead of being handed to `Component::deserialize` (which trusts its input). Writes go to a temporary
//! file renamed into place, so readers never see a partial entry. All paths are relative to one capability `Dir`.
//!
//! # A trust boundary
//! Loading an entry is `unsafe` deserialisation of native code: whoever can write the cache can run code in the
//! agent. The checksum detects corruption, not tampering (an attacker writes a matching one). So the cache is
//! owner-only: [`PrecompiledCache::open`] creates the directory with mode `0700` and refuses an existing directory
//! that is not owned by this process's user or that group or others can write; every entry is written `0600`, and
//! one that is not owned by us or is writable by others is discarded and recompiled, never loaded. Keep the cache on
//! a volume only the agent's user can write (an `emptyDir` in the agent's pod, not a shared host path).

use std::hash::{Hash, Hasher};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt as _, OpenOptions, OpenOptionsExt as _};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Errors opening the cache directory. Errors reading or writing entries are logged and fall back to compiling.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The directory could not be created or opened.
    #[error("cannot open the policy cache at {}: {source}", path.display())]
    Open {
        /// The cache directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The directory exists but others could have written it: loading from it could run their code.
    #[error(
        "refusing the policy cache at {}: it is {reason}; precompiled components are native code, so the cache \
         must be owned by this user and writable by no one else (chmod 700 it, or point the cache elsewhere)",
        path.display()
    )]
    Untrusted {
        /// The cache directory.
        path: PathBuf,
        /// Who else could write it.
        reason: String,
    },
}

/// Why a file or directory with this owner and mode may not be trusted, if it may not: the one rule for the cache
/// directory and its entries. Owned by `me` and not writable by group or others is trusted.
pub fn untrusted_because(owner: u32, mode: u32, me: u32) -> Option<String> {
    if owner != me {
        return Some(format!(
            "owned by uid {owner}, not by this process's uid {me}"
        ));
    }
    if mode & 0o022 != 0 {
        return Some(format!(
            "writable by group or others (mode {:o})",
            mode & 0o7777
        ));
    }
    None
}

fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a valid precompiled entry.
    Hit,
    /// No entry (or caching disabled): compiled, and stored when there is a cache.
    Compiled,
    /// An entry existed but was corrupt or unloadable: discarded, recompiled and rewritten.
    Recompiled,
}

/// A directory of precompiled components.
pub struct PrecompiledCache {
    dir: Dir,
    path: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A `Hasher` that feeds sha256, so the engine's compatibility hash becomes a stable file-name component.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0 // unused: we read the full digest
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Hex digest identifying everything about `engine` that a precompiled artifact depends on.
pub fn engine_fingerprint(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    "wasmtime-48.0.8".hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..16])
}

impl PrecompiledCache {
    /// Open (creating if needed) a cache directory.
    pub fn open(path: &Path) -> Result<Self, CacheError> {
        let open_err = |source| CacheError::Open {
            path: path.to_path_buf(),
            source,
        };
        // Owner-only from the start: a directory we create is never open to others, even for a moment.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(open_err)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority()).map_err(open_err)?;
        // Check the directory we opened (not the path again), so a swap after the check does not matter.
        let meta = dir.dir_metadata().map_err(open_err)?;
        if let Some(reason) = untrusted_because(meta.uid(), meta.mode(), effective_uid()) {
            return Err(CacheError::Untrusted {
                path: path.to_path_buf(),
                reason,
            });
        }
        Ok(Self {
            dir,
            path: path.to_path_buf(),
        })
    }

    /// Where the cache lives (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn entry_name(digest: &str, fingerprint: &str) -> Option<String> {
        // Only ever build names from validated hex: nothing a component author controls reaches a path.
        let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        (is_hex(digest) && is_hex(fingerprint)).then(|| format!("{digest}-{fingerprint}.cwasm"))
    }

    /// Load the precompiled artifact for `digest`, or compile `bytes` and store it.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        fingerprint: &str,
        digest: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(name) = Self::entry_name(digest, fingerprint) else {
            return Ok((
                Component::from_binary(engine, bytes)?,
                CacheOutcome::Compiled,
            ));
        };
        let mut outcome = CacheOutcome::Compiled;
        match self.read_trusted(&name) {
            Ok(entry) => match Self::open_entry(engine, &entry) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(reason) => {
                    tracing::warn!(entry = %name, %reason, "discarding unusable precompiled policy; recompiling");
                    outcome = CacheOutcome::Recompiled;
                }
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                // Untrusted (see the module docs): never loaded; the rewrite below replaces it owner-only.
                tracing::warn!(entry = %name, %err, "discarding a precompiled policy others could have written; recompiling");
                outcome = CacheOutcome::Recompiled;
            }
            Err(err) => {
                tracing::warn!(entry = %name, %err, "cannot read precompiled policy; recompiling")
            }
        }
        let precompiled = engine.precompile_component(bytes)?;
        if let Err(err) = self.store(&name, &precompiled) {
            tracing::warn!(entry = %name, %err, "cannot store precompiled policy (continuing without cache)");
        }
        // Deserialize what we just produced, so a hit and a miss yield the very same kind of object.
        let component = Self::deserialize(engine, &precompiled)?;
        Ok((component, outcome))
    }

    /// Read an entry, refusing one that someone else could have written (see the module docs). The checks are on
    /// the opened file, so what is checked is what is read.
    fn read_trusted(&self, name: &str) -> std::io::Result<Vec<u8>> {
        let mut file = self.dir.open(name)?;
        let meta = file.metadata()?;
        if let Some(reason) = untrusted_because(meta.uid(), meta.mode(), effective_uid()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("untrusted entry: {reason}"),
            ));
        }
        let mut entry = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut entry)?;
        Ok(entry)
    }

    fn open_entry(engine: &Engine, entry: &[u8]) -> Result<Component, String> {
        if entry.len() < 32 {
            return Err("entry shorter than its checksum".to_string());
        }
        let (checksum, payload) = entry.split_at(32);
        if Sha256::digest(payload).as_slice() != checksum {
            return Err("checksum mismatch (corrupted entry)".to_string());
        }
        Self::deserialize(engine, payload).map_err(|e| e.to_string())
    }

    #[allow(unsafe_code)]
    fn deserialize(engine: &Engine, precompiled: &[u8]) -> wasmtime::Result<Component> {
        // SAFETY: `Component::deserialize` requires bytes produced by `precompile_component` of a compatible engine.
        // They are: either we just produced them, or they come from our own cache entry (owned by this user and
        // writable by no one else, in a directory with the same rule: see the module docs) whose sha256 checksum
        // (written with the payload, checked above) matches, under a name keyed by this engine's fingerprint;
        // wasmtime additionally checks the version and engine settings recorded in the artifact.
        unsafe { Component::deserialize(engine, precompiled) }
    }

    fn store(&self, name: &str, precompiled: &[u8]) -> std::io::Result<()> {
        let mut entry = Vec::with_capacity(32 + precompiled.len());
        entry.extend_from_slice(&Sha256::digest(precompiled));
        entry.extend_from_slice(precompiled);
        let tmp = format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(0o600);
        let written = self
            .dir
            .open_with(&tmp, &options)
            .and_then(|mut file| file.write_all(&entry));
        if let Err(err) = written {
            let _ = self.dir.remove_file(&tmp);
            return Err(err);
        }
        self.dir.rename(&tmp, &self.dir, name).inspect_err(|_| {
            let _ = self.dir.remove_file(&tmp);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owner_only_paths_are_trusted() {
        assert_eq!(untrusted_because(1000, 0o40700, 1000), None);
        assert_eq!(untrusted_because(1000, 0o100644, 1000), None);
        let other = untrusted_because(0, 0o700, 1000).unwrap();
        assert!(other.contains("owned by uid 0"), "{other}");
        let group = untrusted_because(1000, 0o770, 1000).unwrap();
        assert!(group.contains("mode 770"), "{group}");
        assert!(untrusted_because(1000, 0o40777, 1000).is_some());
        assert!(untrusted_because(1000, 0o702, 1000).is_some());
    }
}

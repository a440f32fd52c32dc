//! What is decided before etcd and kube-apiserver start: free ports, the admin token, the service-account key,
//! their command lines, and the kubeconfig text.

use std::{
    fs,
    io::Read as _,
    net::TcpListener,
    path::Path,
    process::{Command, Stdio},
};

use base64::Engine as _;

use crate::control_plane::{ADMIN_USER, Error, io_err};

/// Everything decided before the processes start: ports, token, key files.
pub(crate) struct Plan {
    pub(crate) etcd_port: u16,
    pub(crate) etcd_peer_port: u16,
    pub(crate) apiserver_port: u16,
    pub(crate) token: String,
}

impl Plan {
    /// Pick ports, write the token file and generate the service-account key in `dir`.
    pub(crate) fn prepare(dir: &Path) -> Result<Self, Error> {
        let [etcd_port, etcd_peer_port, apiserver_port] = free_ports()?;
        let token = random_token()?;
        fs::create_dir_all(dir.join("pki")).map_err(io_err("the cert directory"))?;
        fs::write(
            dir.join("tokens.csv"),
            format!("{token},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n"),
        )
        .map_err(io_err("the token file"))?;
        let out = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(dir.join("sa.key"))
            .arg("2048")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::KeyGen(e.to_string()))?;
        if !out.status.success() {
            return Err(Error::KeyGen(
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        Ok(Self {
            etcd_port,
            etcd_peer_port,
            apiserver_port,
            token,
        })
    }

    pub(crate) fn etcd_command(&self, bin: &Path, dir: &Path) -> Result<Command, Error> {
        let client = format!("http://127.0.0.1:{}", self.etcd_port);
        let peer = format!("http://127.0.0.1:{}", self.etcd_peer_port);
        let mut cmd = Command::new(bin);
        cmd.arg("--name=kube-testenv")
            .arg(format!("--data-dir={}", dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=kube-testenv={peer}"))
            // Test data is thrown away; fsync only costs time.
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn");
        redirect_output(&mut cmd, &dir.join("etcd.log"))?;
        Ok(cmd)
    }

    pub(crate) fn apiserver_command(&self, bin: &Path, dir: &Path) -> Result<Command, Error> {
        let port = self.apiserver_port;
        let mut cmd = Command::new(bin);
        cmd.arg(format!(
            "--etcd-servers=http://127.0.0.1:{}",
            self.etcd_port
        ))
        .arg("--bind-address=127.0.0.1")
        // Without it, a host with no default route fails with "no default routes found".
        .arg("--advertise-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg(format!("--cert-dir={}", dir.join("pki").display()))
        .arg(format!(
            "--token-auth-file={}",
            dir.join("tokens.csv").display()
        ))
        .arg("--authorization-mode=RBAC")
        .arg(format!("--service-account-issuer=https://127.0.0.1:{port}"))
        .arg(format!(
            "--service-account-key-file={}",
            dir.join("sa.key").display()
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            dir.join("sa.key").display()
        ))
        .arg("--service-cluster-ip-range=10.0.0.0/24")
        .arg("--allow-privileged=true")
        // Nothing creates the `default` ServiceAccount (no controller-manager), so pods would be rejected.
        .arg("--disable-admission-plugins=ServiceAccount")
        .arg("--endpoint-reconciler-type=none")
        .arg("--enable-priority-and-fairness=false")
        .arg("--profiling=false");
        redirect_output(&mut cmd, &dir.join("kube-apiserver.log"))?;
        Ok(cmd)
    }
}

/// The admin kubeconfig; the same text shape serves every token-authenticated client.
pub(crate) fn kubeconfig_yaml(server: &str, ca_pem: &str, user: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-testenv\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n\
         - name: kube-testenv\n  context:\n    cluster: kube-testenv\n    user: {user}\n    namespace: default\n\
         current-context: kube-testenv\n"
    )
}

pub(crate) fn redirect_output(cmd: &mut Command, log: &Path) -> Result<(), Error> {
    let file = fs::File::create(log).map_err(io_err("a log file"))?;
    let err = file.try_clone().map_err(io_err("a log file"))?;
    cmd.stdin(Stdio::null()).stdout(file).stderr(err);
    Ok(())
}

/// Three distinct free loopback ports. Held open together so they differ; a small race with other programs
/// remains between closing them and the servers binding (a start-up failure then names the port).
fn free_ports() -> Result<[u16; 3], Error> {
    let bind = || TcpListener::bind("127.0.0.1:0").map_err(io_err("a free port"));
    let (a, b, c) = (bind()?, bind()?, bind()?);
    let port = |l: &TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .map_err(io_err("a free port"))
    };
    Ok([port(&a)?, port(&b)?, port(&c)?])
}

fn random_token() -> Result<String, Error> {
    let mut buf = [0u8; 24];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(io_err("a random token"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::config::Kubeconfig;

    #[test]
    fn kubeconfig_parses() {
        let yaml = kubeconfig_yaml("https://127.0.0.1:1234", "PEM", "u", "tok");
        let kc = Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("kube-testenv"));
        assert_eq!(
            kc.clusters[0].cluster.as_ref().unwrap().server.as_deref(),
            Some("https://127.0.0.1:1234")
        );
    }

    #[test]
    fn ports_are_distinct() {
        let [a, b, c] = free_ports().unwrap();
        assert!(a != b && b != c && a != c);
    }

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}

//! Test support: a real kube-apiserver + etcd started from binaries built from Go modules (tests/testenv).

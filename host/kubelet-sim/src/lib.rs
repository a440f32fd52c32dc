//! Kubelet simulator: registers fake nodes, binds pods, advances pod status the way kwok does.

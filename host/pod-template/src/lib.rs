//! Values-shaped pod template (the `basePodTemplate` / `templateOverrides` shape of the ClearML Enterprise chart)
//! mapped onto a Kubernetes `v1/Pod`. Compiles for the host and for `wasm32-wasip2` (the template-overrides plugin).

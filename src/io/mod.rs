//! File formats that are not models: the TorchScript archive the FID weights come in.

pub mod torchscript;

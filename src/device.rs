//! Choosing where tensors live: `--device cpu` (burn's Flex backend, always built), `vulkan`,
//! `wgpu` and `cuda` (cargo features of the same names).

use burn::tensor::Device;

use crate::error::{Error, Result};

/// The `--device` flag.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Vulkan,
    Wgpu,
    Cuda,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(DeviceChoice::Cpu),
            "vulkan" => Ok(DeviceChoice::Vulkan),
            "wgpu" => Ok(DeviceChoice::Wgpu),
            "cuda" => Ok(DeviceChoice::Cuda),
            other => Err(Error::bad_input(format!(
                "unknown device '{other}' (expected cpu, vulkan, wgpu or cuda)"
            ))),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Vulkan => "vulkan",
            DeviceChoice::Wgpu => "wgpu",
            DeviceChoice::Cuda => "cuda",
        })
    }
}

fn not_built(feature: &str) -> Error {
    Error::bad_input(format!(
        "--device {feature}: this binary was built without the '{feature}' feature; \
         rebuild with `cargo build --release --features {feature}`"
    ))
}

impl DeviceChoice {
    /// The burn device (without autodiff; trainers add it).
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::flex()),
            #[cfg(feature = "vulkan")]
            DeviceChoice::Vulkan => Ok(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(not(feature = "vulkan"))]
            DeviceChoice::Vulkan => Err(not_built("vulkan")),
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(not(feature = "wgpu"))]
            DeviceChoice::Wgpu => Err(not_built("wgpu")),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda => Ok(Device::cuda(0)),
            #[cfg(not(feature = "cuda"))]
            DeviceChoice::Cuda => Err(not_built("cuda")),
        }
    }
}

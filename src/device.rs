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
    /// The burn device (without autodiff; trainers add it): the kind's default one.
    pub fn device(self) -> Result<Device> {
        DeviceSpec {
            kind: self,
            index: None,
        }
        .device()
    }
}

/// One replica of `--devices`: a kind and, for GPUs, which one (`vulkan:1`, `cuda:0`; no index:
/// the kind's default device). Written to config.json as it is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceSpec {
    pub kind: DeviceChoice,
    pub index: Option<usize>,
}

impl std::str::FromStr for DeviceSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (kind, index) = match s.split_once(':') {
            Some((kind, index)) => {
                let index = index.parse::<usize>().map_err(|_| {
                    Error::bad_input(format!(
                        "device '{s}': the part after ':' must be a device number (vulkan:1)"
                    ))
                })?;
                (kind.parse::<DeviceChoice>()?, Some(index))
            }
            None => (s.parse::<DeviceChoice>()?, None),
        };
        if kind == DeviceChoice::Cpu && index.is_some() {
            return Err(Error::bad_input(format!(
                "device '{s}': the CPU is one device; name its replicas without a number (cpu,cpu)"
            )));
        }
        Ok(Self { kind, index })
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<DeviceSpec> for String {
    fn from(spec: DeviceSpec) -> String {
        spec.to_string()
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(index) => write!(f, "{}:{index}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl DeviceSpec {
    /// The burn device (without autodiff). A GPU's number counts the discrete GPUs the backend
    /// finds (vulkan, wgpu) or CUDA's devices.
    pub fn device(self) -> Result<Device> {
        #[cfg(any(feature = "vulkan", feature = "wgpu"))]
        let gpu = match self.index {
            Some(index) => burn::tensor::DeviceKind::DiscreteGpu(index),
            None => burn::tensor::DeviceKind::DefaultDevice,
        };
        match self.kind {
            DeviceChoice::Cpu => Ok(Device::flex()),
            #[cfg(feature = "vulkan")]
            DeviceChoice::Vulkan => Ok(Device::vulkan(gpu)),
            #[cfg(not(feature = "vulkan"))]
            DeviceChoice::Vulkan => Err(not_built("vulkan")),
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu => Ok(Device::wgpu(gpu)),
            #[cfg(not(feature = "wgpu"))]
            DeviceChoice::Wgpu => Err(not_built("wgpu")),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda => Ok(Device::cuda(self.index.unwrap_or(0))),
            #[cfg(not(feature = "cuda"))]
            DeviceChoice::Cuda => Err(not_built("cuda")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_specs_read_and_write_as_spelled() {
        for spelled in ["cpu", "vulkan", "vulkan:1", "cuda:0", "wgpu:2"] {
            let spec: DeviceSpec = spelled.parse().unwrap();
            assert_eq!(spec.to_string(), spelled);
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(json, format!("\"{spelled}\""));
            assert_eq!(serde_json::from_str::<DeviceSpec>(&json).unwrap(), spec);
        }
        assert_eq!(
            "vulkan:1".parse::<DeviceSpec>().unwrap(),
            DeviceSpec {
                kind: DeviceChoice::Vulkan,
                index: Some(1)
            }
        );
        let cpu = "cpu:1".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(cpu.contains("cpu,cpu"), "{cpu}");
        assert!("vulkan:x".parse::<DeviceSpec>().is_err());
        assert!("tpu:0".parse::<DeviceSpec>().is_err());
    }
}

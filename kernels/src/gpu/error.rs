//! What can go wrong with a GPU, by kind: the harness tells a bad `--gpu` (the user's input)
//! from a machine without a usable adapter, a problem beyond the adapter's limits or features
//! (`unsupported` rows), and a shader that does not build.

/// A GPU failure. The message names what and why (the limit, the adapter, the shader).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// The GPU options cannot be met: an adapter index or name that matches nothing, options
    /// changed after the device was opened.
    #[error("{0}")]
    Options(String),
    /// No usable adapter (none, or software only without `--allow-software-gpu`), or the device
    /// could not be opened.
    #[error("{0}")]
    NoDevice(String),
    /// The adapter cannot run this problem: a buffer or grid above its limits, a feature or
    /// cooperative-matrix configuration it lacks, a failed self-check.
    #[error("{0}")]
    Unsupported(String),
    /// A shader specialization did not validate or build.
    #[error("{0}")]
    Shader(String),
}

impl From<GpuError> for crate::kernel::Unsupported {
    /// A GPU kernel that cannot run a problem here says why (the kind is in the message).
    fn from(e: GpuError) -> Self {
        e.to_string().into()
    }
}

impl From<GpuError> for crate::kernel::KernelError {
    fn from(e: GpuError) -> Self {
        match e {
            GpuError::Unsupported(reason) => crate::kernel::KernelError::Unsupported {
                kernel: "gpu".into(),
                reason,
            },
            other => crate::kernel::KernelError::Other(other.to_string()),
        }
    }
}

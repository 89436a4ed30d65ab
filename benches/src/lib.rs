//! rvisor's benchmarks: what interception costs, per system call and per platform, against
//! native and against the kernel's own floor.

pub mod cases;
pub mod floor;
pub mod ops;
pub mod report;
pub mod stats;
pub mod suite;
